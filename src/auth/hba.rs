//! Access rules in the form of PostgreSQL's `pg_hba.conf` (`auth_hba_file`, used with
//! `auth_type = "hba"`): which clients may log in, and how they must prove who they are.
//!
//! The supported subset (anything else is refused when the file is read, naming the line):
//!
//! * connection types `host`, `hostssl`, `hostnossl`, `hostgssenc` (never matches: pgcorral
//!   offers no GSS encryption), `hostnogssenc`, and `local` (never matches: pgcorral listens
//!   on TCP only);
//! * databases `all`, `sameuser`, `replication` (never matches: pgcorral serves no replication
//!   connections), names, quoted names, comma lists;
//! * users `all`, names, quoted names, comma lists;
//! * addresses `all`, `address/prefix` (IPv4 or IPv6), and `address mask`;
//! * methods `trust`, `reject`, `md5`, `scram-sha-256`, `password` and `cert`, with the
//!   option `clientcert=verify-ca|verify-full` on `hostssl` lines.
//!
//! Rules are tried in file order; the first whose type, database, user and address fit the
//! connection decides, as in PostgreSQL.

mod parse;

use std::net::IpAddr;

pub use parse::HbaError;

/// The rules of one file, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HbaRules {
    rules: Vec<HbaRule>,
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaRule {
    /// 1-based line number, for logs.
    pub line: usize,
    /// `local`, `host`, `hostssl`, …
    pub conn: ConnType,
    /// Any of these databases.
    databases: Vec<DatabasePattern>,
    /// Any of these users.
    users: Vec<UserPattern>,
    /// The client addresses; `None` on `local` lines.
    address: Option<Address>,
    /// How the client must authenticate.
    pub method: HbaMethod,
    /// `clientcert=…`: a client certificate is required as well.
    pub clientcert: Option<ClientCert>,
}

/// The first field of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnType {
    /// Unix-domain socket connections: never a pgcorral client.
    Local,
    /// TCP, with or without TLS.
    Host,
    /// TCP with TLS.
    HostSsl,
    /// TCP without TLS.
    HostNoSsl,
    /// TCP with GSSAPI encryption: never a pgcorral client.
    HostGssEnc,
    /// TCP without GSSAPI encryption: every pgcorral client.
    HostNoGssEnc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DatabasePattern {
    All,
    SameUser,
    Replication,
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum UserPattern {
    All,
    Name(String),
}

/// Client addresses of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Address {
    All,
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

/// How a client must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaMethod {
    /// No password.
    Trust,
    /// Refused.
    Reject,
    /// MD5 challenge (SCRAM when the user's secret is a SCRAM verifier, as PostgreSQL does).
    Md5,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// The password in clear text (over TLS only, preferably).
    Password,
    /// A TLS client certificate whose common name is the user name; no password.
    Cert,
}

impl HbaMethod {
    /// The keyword in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            HbaMethod::Trust => "trust",
            HbaMethod::Reject => "reject",
            HbaMethod::Md5 => "md5",
            HbaMethod::ScramSha256 => "scram-sha-256",
            HbaMethod::Password => "password",
            HbaMethod::Cert => "cert",
        }
    }
}

/// `clientcert=` of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCert {
    /// A certificate the TLS layer verified.
    VerifyCa,
    /// A verified certificate whose common name is the user name.
    VerifyFull,
}

/// What is known about a client when its rule is looked up.
#[derive(Debug, Clone, Copy)]
pub struct HbaRequest<'a> {
    /// The client's address.
    pub addr: IpAddr,
    /// Whether the connection uses TLS.
    pub tls: bool,
    /// The common name of the client certificate the TLS layer verified, if any.
    pub peer_cn: Option<&'a str>,
    /// The database the client asked for.
    pub database: &'a str,
    /// The user the client logs in as.
    pub user: &'a str,
}

/// What the rules say about a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaVerdict {
    /// Authenticate with `method` (`Trust` and `Cert`: no password; the certificate, if one
    /// is required, has been checked).
    Authenticate {
        /// Line that matched.
        line: usize,
        /// Never `Reject`.
        method: HbaMethod,
    },
    /// A `reject` line matched.
    Reject {
        /// Line that matched.
        line: usize,
    },
    /// The line that matched requires a client certificate that the client did not show
    /// (or whose common name is not the user name).
    CertificateRefused {
        /// Line that matched.
        line: usize,
    },
    /// No line matched.
    NoEntry,
}

impl HbaRules {
    /// Parses the text of a pg_hba.conf-style file.
    pub fn parse(text: &str) -> Result<HbaRules, HbaError> {
        parse::parse(text).map(|rules| HbaRules { rules })
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[HbaRule] {
        &self.rules
    }

    /// The first rule that fits the client.
    pub fn first_match(&self, req: &HbaRequest<'_>) -> Option<&HbaRule> {
        self.rules.iter().find(|r| r.matches(req))
    }

    /// The decision of the first rule that fits the client.
    pub fn decide(&self, req: &HbaRequest<'_>) -> HbaVerdict {
        let Some(rule) = self.first_match(req) else {
            return HbaVerdict::NoEntry;
        };
        let line = rule.line;
        if rule.method == HbaMethod::Reject {
            return HbaVerdict::Reject { line };
        }
        if !rule.certificate_ok(req) {
            return HbaVerdict::CertificateRefused { line };
        }
        HbaVerdict::Authenticate {
            line,
            method: rule.method,
        }
    }
}

impl HbaRule {
    /// Whether this rule applies to the client (type, database, user, address).
    pub fn matches(&self, req: &HbaRequest<'_>) -> bool {
        let conn = match self.conn {
            ConnType::Local | ConnType::HostGssEnc => false,
            ConnType::Host | ConnType::HostNoGssEnc => true,
            ConnType::HostSsl => req.tls,
            ConnType::HostNoSsl => !req.tls,
        };
        conn && self.databases.iter().any(|d| match d {
            DatabasePattern::All => true,
            DatabasePattern::SameUser => req.database == req.user,
            DatabasePattern::Replication => false,
            DatabasePattern::Name(n) => n == req.database,
        }) && self.users.iter().any(|u| match u {
            UserPattern::All => true,
            UserPattern::Name(n) => n == req.user,
        }) && self.address.is_some_and(|a| a.contains(req.addr))
    }

    /// Whether the client's certificate is what the rule requires (`cert`, `clientcert=`).
    fn certificate_ok(&self, req: &HbaRequest<'_>) -> bool {
        let need = match (self.method, self.clientcert) {
            (HbaMethod::Cert, _) | (_, Some(ClientCert::VerifyFull)) => Some(true),
            (_, Some(ClientCert::VerifyCa)) => Some(false),
            _ => None,
        };
        match need {
            None => true,
            Some(name_must_match) => {
                req.tls
                    && match req.peer_cn {
                        Some(cn) => !name_must_match || cn == req.user,
                        None => false,
                    }
            }
        }
    }
}

impl Address {
    fn contains(self, addr: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) is an IPv4 client.
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        match (self, addr) {
            (Address::All, _) => true,
            (Address::V4 { net, mask }, IpAddr::V4(a)) => u32::from(a) & mask == net & mask,
            (Address::V6 { net, mask }, IpAddr::V6(a)) => u128::from(a) & mask == net & mask,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(addr: &str, db: &'a str, user: &'a str) -> HbaRequest<'a> {
        HbaRequest {
            addr: addr.parse().unwrap(),
            tls: false,
            peer_cn: None,
            database: db,
            user,
        }
    }

    fn verdict(rules: &str, r: &HbaRequest<'_>) -> HbaVerdict {
        HbaRules::parse(rules).unwrap().decide(r)
    }

    fn method(line: usize, method: HbaMethod) -> HbaVerdict {
        HbaVerdict::Authenticate { line, method }
    }

    #[test]
    fn first_matching_line_decides() {
        let rules = "\
            host app  alice 127.0.0.1/32 trust\n\
            host app  all   127.0.0.1/32 reject\n\
            host all  all   127.0.0.1/32 scram-sha-256\n\
            host all  all   0.0.0.0/0    md5\n";
        assert_eq!(
            verdict(rules, &req("127.0.0.1", "app", "alice")),
            method(1, HbaMethod::Trust)
        );
        assert_eq!(
            verdict(rules, &req("127.0.0.1", "app", "bob")),
            HbaVerdict::Reject { line: 2 }
        );
        assert_eq!(
            verdict(rules, &req("127.0.0.1", "other", "bob")),
            method(3, HbaMethod::ScramSha256)
        );
        assert_eq!(
            verdict(rules, &req("10.1.2.3", "app", "bob")),
            method(4, HbaMethod::Md5)
        );
        assert_eq!(
            verdict(rules, &req("::1", "app", "bob")),
            HbaVerdict::NoEntry
        );
        assert_eq!(
            verdict("", &req("127.0.0.1", "a", "b")),
            HbaVerdict::NoEntry
        );
    }

    #[test]
    fn databases_and_users() {
        let rules = "\
            host sameuser     all          all trust\n\
            host replication  all          all trust\n\
            host \"all\"      bob          all md5\n\
            host a,b,\"C d\"  carol,\"D e\" all password\n";
        let r = HbaRules::parse(rules).unwrap();
        assert_eq!(
            r.decide(&req("1.2.3.4", "bob", "bob")),
            method(1, HbaMethod::Trust)
        );
        // `replication` never matches a pgcorral client, not even a database of that name.
        assert_eq!(
            r.decide(&req("1.2.3.4", "replication", "x")),
            HbaVerdict::NoEntry
        );
        // A quoted keyword is a name.
        assert_eq!(
            r.decide(&req("1.2.3.4", "all", "bob")),
            method(3, HbaMethod::Md5)
        );
        assert_eq!(r.decide(&req("1.2.3.4", "app", "bob")), HbaVerdict::NoEntry);
        for (db, user) in [("a", "carol"), ("b", "D e"), ("C d", "carol")] {
            assert_eq!(
                r.decide(&req("1.2.3.4", db, user)),
                method(4, HbaMethod::Password)
            );
        }
        assert_eq!(
            r.decide(&req("1.2.3.4", "c d", "carol")),
            HbaVerdict::NoEntry
        );
        assert_eq!(r.decide(&req("1.2.3.4", "a", "Carol")), HbaVerdict::NoEntry);
    }

    #[test]
    fn addresses() {
        let rules = "\
            host all a 127.0.0.1/32                trust\n\
            host all b 10.0.0.0/8                  trust\n\
            host all c 192.168.1.0 255.255.255.0   trust\n\
            host all d ::1/128                     trust\n\
            host all e fe80::/10                   trust\n\
            host all f 0.0.0.0/0                   trust\n\
            host all g ::0/0                       trust\n\
            host all h all                         trust\n\
            host all i 2001:db8:: ffff:ffff::      trust\n";
        let r = HbaRules::parse(rules).unwrap();
        let ok = |addr: &str, user: &str| r.decide(&req(addr, "db", user)) != HbaVerdict::NoEntry;
        assert!(ok("127.0.0.1", "a"));
        assert!(!ok("127.0.0.2", "a"));
        assert!(ok("::ffff:127.0.0.1", "a"), "IPv4-mapped IPv6 is IPv4");
        assert!(ok("10.255.0.1", "b"));
        assert!(!ok("11.0.0.1", "b"));
        assert!(ok("192.168.1.77", "c"));
        assert!(!ok("192.168.2.77", "c"));
        assert!(ok("::1", "d"));
        assert!(
            !ok("127.0.0.1", "d"),
            "an IPv6 rule never matches an IPv4 client"
        );
        assert!(ok("fe80::1234", "e"));
        assert!(!ok("fec0::1", "e"));
        assert!(ok("203.0.113.9", "f"));
        assert!(!ok("::2", "f"));
        assert!(ok("2001:db8::5", "g"));
        assert!(!ok("203.0.113.9", "g"));
        assert!(ok("203.0.113.9", "h"));
        assert!(ok("2001:db8::5", "h"));
        assert!(ok("2001:db8:1::5", "i"));
        assert!(!ok("2001:db9::5", "i"));
    }

    #[test]
    fn connection_types_and_tls() {
        let rules = "\
            local     all all                 trust\n\
            hostgssenc all all all            trust\n\
            hostssl   all a   all             trust\n\
            hostnossl all b   all             trust\n\
            hostnogssenc all c all            trust\n";
        let r = HbaRules::parse(rules).unwrap();
        let plain = |user| req("127.0.0.1", "db", user);
        let tls = |user| HbaRequest {
            tls: true,
            ..req("127.0.0.1", "db", user)
        };
        // local and hostgssenc never match; hostssl only with TLS; hostnossl only without.
        assert_eq!(r.decide(&plain("a")), HbaVerdict::NoEntry);
        assert_eq!(r.decide(&tls("a")), method(3, HbaMethod::Trust));
        assert_eq!(r.decide(&plain("b")), method(4, HbaMethod::Trust));
        assert_eq!(r.decide(&tls("b")), HbaVerdict::NoEntry);
        assert_eq!(r.decide(&plain("c")), method(5, HbaMethod::Trust));
        assert_eq!(r.decide(&tls("c")), method(5, HbaMethod::Trust));
    }

    #[test]
    fn certificates() {
        let rules = "\
            hostssl all a all cert\n\
            hostssl all b all md5 clientcert=verify-full\n\
            hostssl all c all scram-sha-256 clientcert=verify-ca\n";
        let r = HbaRules::parse(rules).unwrap();
        let with = |user, cn| HbaRequest {
            tls: true,
            peer_cn: cn,
            ..req("127.0.0.1", "db", user)
        };
        assert_eq!(r.decide(&with("a", Some("a"))), method(1, HbaMethod::Cert));
        assert_eq!(
            r.decide(&with("a", Some("b"))),
            HbaVerdict::CertificateRefused { line: 1 }
        );
        assert_eq!(
            r.decide(&with("a", None)),
            HbaVerdict::CertificateRefused { line: 1 }
        );
        assert_eq!(r.decide(&with("b", Some("b"))), method(2, HbaMethod::Md5));
        assert_eq!(
            r.decide(&with("b", Some("x"))),
            HbaVerdict::CertificateRefused { line: 2 }
        );
        assert_eq!(
            r.decide(&with("c", Some("anyone"))),
            method(3, HbaMethod::ScramSha256)
        );
        assert_eq!(
            r.decide(&with("c", None)),
            HbaVerdict::CertificateRefused { line: 3 }
        );
    }
}
