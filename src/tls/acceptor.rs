//! The TLS configuration shown to clients (`client_tls_sslmode`, `tls_cert_file`,
//! `tls_key_file`, `tls_ca_file`).

use std::sync::Arc;

use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::ServerConfig;

use super::{provider, PemFile, TlsError, ALPN_POSTGRESQL};
use crate::config::TlsMode;

/// The server-side configuration for clients. `allow`, `prefer` and `require` ask no client
/// certificate; `verify-ca` and `verify-full` require one that chains to `ca` (as in
/// PgBouncer, verify-full means the same as verify-ca toward clients: a client has no host
/// name to check). ALPN "postgresql" is offered (PostgreSQL 17 clients send it; direct TLS
/// requires it). No session resumption, as PostgreSQL.
pub fn acceptor_config(
    mode: TlsMode,
    cert: &PemFile<'_>,
    key: &PemFile<'_>,
    ca: Option<&PemFile<'_>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = cert.certificates()?;
    let private_key = key.private_key()?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Provider(e.to_string()))?;
    let builder = match mode {
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let ca = ca.ok_or(TlsError::Missing {
                key: "tls_ca_file",
                mode_key: "client_tls_sslmode",
                mode: mode.as_str(),
            })?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()?), provider)
                    .build()
                    .map_err(|e| ca.unusable(e))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => key.unusable(format!(
                "this key does not belong to the certificate in general.{} ({})",
                cert.key,
                cert.path.display()
            )),
            e => key.unusable(e),
        })?;
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    Ok(Arc::new(config))
}
