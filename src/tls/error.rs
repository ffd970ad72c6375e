//! Why a TLS configuration could not be built (each message names the setting and its file),
//! and how a failed handshake is described to the operator.

use std::path::PathBuf;

use rustls::{CertificateError, Error};

/// A TLS file that could not be used. `key` is the setting (`tls_cert_file`, …) and `path`
/// its value, so the operator knows which file to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("general.{key}: cannot read {}: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not PEM, or a PEM block is damaged.
    #[error("general.{key}: {} is not valid PEM: {reason}", path.display())]
    BadPem {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// No certificate in a file that must hold one.
    #[error(
        "general.{key}: {} holds no certificate (expected a PEM \"BEGIN CERTIFICATE\" block)",
        path.display()
    )]
    NoCertificate { key: &'static str, path: PathBuf },
    /// No private key in a file that must hold one.
    #[error(
        "general.{key}: {} holds no private key (expected a PEM \"BEGIN PRIVATE KEY\", \
         \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)",
        path.display()
    )]
    NoKey { key: &'static str, path: PathBuf },
    /// The contents parse but cannot be used (a key that does not match its certificate, an
    /// unsupported key type, a CA certificate webpki refuses).
    #[error("general.{key}: {}: {reason}", path.display())]
    Unusable {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The TLS library refused its own settings (not expected with the ring provider).
    #[error("the TLS library cannot be set up: {0}")]
    Provider(String),
    /// A mode without a file it needs (validation refuses such a config; this guards the
    /// library's own callers).
    #[error("general.{key} is required with {mode_key} = \"{mode}\"")]
    Missing {
        key: &'static str,
        mode_key: &'static str,
        mode: &'static str,
    },
}

/// What went wrong in a handshake, in words an operator can act on.
pub fn describe_handshake_error(e: &Error) -> String {
    match e {
        Error::InvalidCertificate(c) => match c {
            CertificateError::NotValidForName => {
                "certificate not valid for name: the certificate names another host".into()
            }
            CertificateError::UnknownIssuer => {
                "unknown issuer: the certificate is not signed by the configured CA".into()
            }
            CertificateError::BadSignature => {
                "bad signature: the certificate is not correctly signed by its issuer".into()
            }
            CertificateError::Expired => "the certificate has expired".into(),
            CertificateError::NotValidYet => "the certificate is not valid yet".into(),
            CertificateError::Revoked => "the certificate is revoked".into(),
            CertificateError::BadEncoding => "the certificate is not valid DER".into(),
            // The variants with context have readable messages of their own.
            other => other.to_string(),
        },
        Error::NoCertificatesPresented => "the peer presented no certificate".into(),
        Error::AlertReceived(alert) => format!("the peer ended the handshake ({alert:?})"),
        Error::NoApplicationProtocol => {
            "the peer offered no ALPN protocol in common (expected \"postgresql\")".into()
        }
        other => other.to_string(),
    }
}
