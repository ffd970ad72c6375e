//! Handshakes in memory between the configurations built here: which modes accept which
//! certificates, on both sides.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};

use super::*;
use crate::config::TlsMode;

/// A CA and a certificate it signed, as PEM.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A new CA, with a name of its own (webpki finds issuers by name).
fn ca() -> (rcgen::Certificate, KeyPair) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("test CA {n}"));
    (params.self_signed(&key).unwrap(), key)
}

fn issue(names: &[&str], cn: &str) -> Pki {
    let (ca, ca_key) = ca();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn file<'a>(key: &'static str, text: &'a str) -> PemFile<'a> {
    PemFile {
        key,
        path: Path::new("/test.pem"),
        bytes: text.as_bytes(),
    }
}

fn acceptor(server: &Pki, mode: TlsMode, client_ca: Option<&str>) -> Arc<rustls::ServerConfig> {
    acceptor_config(
        mode,
        &file("tls_cert_file", &server.cert_pem),
        &file("tls_key_file", &server.key_pem),
        client_ca.map(|c| file("tls_ca_file", c)).as_ref(),
    )
    .unwrap()
}

fn connector(mode: TlsMode, ca: Option<&str>, identity: Option<&Pki>) -> Arc<rustls::ClientConfig> {
    let cert = identity.map(|p| file("server_tls_cert_file", &p.cert_pem));
    let key = identity.map(|p| file("server_tls_key_file", &p.key_pem));
    connector_config(
        mode,
        ca.map(|c| file("server_tls_ca_file", c)).as_ref(),
        cert.as_ref().zip(key.as_ref()),
    )
    .unwrap()
}

/// Runs a handshake in memory; the first error either side reports.
fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
    host: &str,
) -> Result<ServerConnection, rustls::Error> {
    let name = server_name(host, std::net::IpAddr::from([127, 0, 0, 1]));
    let mut c = ClientConnection::new(client, name).unwrap();
    let mut s = ServerConnection::new(server).unwrap();
    for _ in 0..10 {
        let mut wire = Vec::new();
        c.write_tls(&mut wire).unwrap();
        if !wire.is_empty() {
            s.read_tls(&mut &wire[..]).unwrap();
            s.process_new_packets()?;
        }
        wire.clear();
        s.write_tls(&mut wire).unwrap();
        if !wire.is_empty() {
            c.read_tls(&mut &wire[..]).unwrap();
            c.process_new_packets()?;
        }
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(s);
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn require_accepts_any_server_certificate() {
    let server = issue(&["db.example"], "db");
    let s = handshake(
        connector(TlsMode::Require, None, None),
        acceptor(&server, TlsMode::Require, None),
        "127.0.0.1",
    )
    .unwrap();
    assert_eq!(s.alpn_protocol(), Some(ALPN_POSTGRESQL));
    let summary = TlsSummary::of(&s).unwrap().to_string();
    assert!(summary.starts_with("TLSv1.3/TLS13_"), "{summary}");
}

#[test]
fn verify_ca_checks_the_chain_but_not_the_name() {
    let server = issue(&["db.example"], "db");
    handshake(
        connector(TlsMode::VerifyCa, Some(&server.ca_pem), None),
        acceptor(&server, TlsMode::Require, None),
        "127.0.0.1",
    )
    .unwrap();
    let other = issue(&["db.example"], "db");
    let e = handshake(
        connector(TlsMode::VerifyCa, Some(&other.ca_pem), None),
        acceptor(&server, TlsMode::Require, None),
        "db.example",
    )
    .unwrap_err();
    assert!(
        describe_handshake_error(&e).contains("unknown issuer"),
        "{e}"
    );
}

#[test]
fn verify_full_checks_the_name_too() {
    let server = issue(&["db.example", "127.0.0.1"], "db");
    for host in ["db.example", "127.0.0.1"] {
        handshake(
            connector(TlsMode::VerifyFull, Some(&server.ca_pem), None),
            acceptor(&server, TlsMode::Require, None),
            host,
        )
        .unwrap();
    }
    let e = handshake(
        connector(TlsMode::VerifyFull, Some(&server.ca_pem), None),
        acceptor(&server, TlsMode::Require, None),
        "other.example",
    )
    .unwrap_err();
    let text = describe_handshake_error(&e);
    assert!(text.contains("not valid for name"), "{text}");
}

#[test]
fn verify_ca_toward_clients_requires_a_certificate_from_the_ca() {
    let server = issue(&["127.0.0.1"], "pgcorral");
    let client = issue(&[], "alice");
    let accept = acceptor(&server, TlsMode::VerifyCa, Some(&client.ca_pem));
    let s = handshake(
        connector(TlsMode::Require, None, Some(&client)),
        accept.clone(),
        "127.0.0.1",
    )
    .unwrap();
    let peer = s.peer_certificates().unwrap();
    assert_eq!(common_name(&peer[0]).as_deref(), Some("alice"));
    let e = handshake(
        connector(TlsMode::Require, None, None),
        accept.clone(),
        "127.0.0.1",
    )
    .unwrap_err();
    assert_eq!(e, rustls::Error::NoCertificatesPresented);
    let stranger = issue(&[], "mallory");
    let e = handshake(
        connector(TlsMode::Require, None, Some(&stranger)),
        accept,
        "127.0.0.1",
    )
    .unwrap_err();
    assert!(
        describe_handshake_error(&e).contains("unknown issuer"),
        "{e}"
    );
}

#[test]
fn a_key_of_another_certificate_is_named_in_the_error() {
    let a = issue(&["127.0.0.1"], "a");
    let b = issue(&["127.0.0.1"], "b");
    let e = acceptor_config(
        TlsMode::Require,
        &file("tls_cert_file", &a.cert_pem),
        &file("tls_key_file", &b.key_pem),
        None,
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("general.tls_key_file: /test.pem"),
        "{text}"
    );
    assert!(
        text.contains("does not belong to the certificate in general.tls_cert_file"),
        "{text}"
    );
}

#[test]
fn server_names_follow_the_host() {
    assert!(matches!(
        server_name("db.example", [127, 0, 0, 1].into()),
        ServerName::DnsName(_)
    ));
}
