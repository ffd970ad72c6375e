//! The TLS configuration toward servers (`server_tls_sslmode`, `server_tls_ca_file`,
//! `server_tls_cert_file`, `server_tls_key_file`), with libpq's meanings, and the name a
//! server's certificate is checked against.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::{DnsName, ServerName};
use rustls::ClientConfig;

use super::verify::{AnyCertificate, ChainOnly};
use super::{provider, PemFile, TlsError, ALPN_POSTGRESQL};
use crate::config::TlsMode;

/// The client-side configuration for servers. `allow`, `prefer` and `require` check no
/// certificate; `verify-ca` checks the chain against `ca`; `verify-full` also checks that the
/// certificate names the configured host. `identity` (certificate chain, key) is shown to
/// servers that ask for a client certificate.
pub fn connector_config(
    mode: TlsMode,
    ca: Option<&PemFile<'_>>,
    identity: Option<(&PemFile<'_>, &PemFile<'_>)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let webpki = |ca: Option<&PemFile<'_>>| {
        let ca = ca.ok_or(TlsError::Missing {
            key: "server_tls_ca_file",
            mode_key: "server_tls_sslmode",
            mode: mode.as_str(),
        })?;
        WebPkiServerVerifier::builder_with_provider(Arc::new(ca.roots()?), provider.clone())
            .build()
            .map_err(|e| ca.unusable(e))
    };
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        TlsMode::VerifyFull => webpki(ca)?,
        TlsMode::VerifyCa => Arc::new(ChainOnly::new(webpki(ca)?)),
        _ => Arc::new(AnyCertificate::new(&provider)),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Provider(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some((cert, key)) => {
            let chain = cert.certificates()?;
            builder
                .with_client_auth_cert(chain, key.private_key()?)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => key.unusable(format!(
                        "this key does not belong to the certificate in general.{} ({})",
                        cert.key,
                        cert.path.display()
                    )),
                    e => key.unusable(e),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// The name a server's certificate must carry: its configured host, as an IP address name
/// when it is one (no SNI is sent then), else as a DNS name (also sent as SNI). A host that
/// is neither (a name with characters DNS does not allow) falls back to the address it
/// resolved to.
pub fn server_name(host: &str, resolved: IpAddr) -> ServerName<'static> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ServerName::IpAddress(ip.into());
    }
    match DnsName::try_from(host.to_owned()) {
        Ok(name) => ServerName::DnsName(name),
        Err(_) => ServerName::IpAddress(resolved.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_become_ip_or_dns_names() {
        let any = IpAddr::from([10, 0, 0, 1]);
        assert!(matches!(
            server_name("127.0.0.1", any),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(server_name("::1", any), ServerName::IpAddress(_)));
        assert!(matches!(
            server_name("db.example", any),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name("bad host", any),
            ServerName::IpAddress(_)
        ));
    }

    #[test]
    fn verifying_modes_need_a_ca() {
        for mode in [TlsMode::VerifyCa, TlsMode::VerifyFull] {
            let e = connector_config(mode, None, None).unwrap_err();
            assert!(e.to_string().contains("server_tls_ca_file"), "{e}");
        }
        for mode in [TlsMode::Allow, TlsMode::Prefer, TlsMode::Require] {
            connector_config(mode, None, None).unwrap();
        }
    }
}
