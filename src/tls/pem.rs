//! PEM contents of a configured file: certificates, a private key, CA roots.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::TlsError;

/// The bytes of one configured file, with the setting that named it (for messages).
#[derive(Debug, Clone, Copy)]
pub struct PemFile<'a> {
    /// The setting in `[general]`, e.g. `tls_cert_file`.
    pub key: &'static str,
    /// Its value.
    pub path: &'a Path,
    /// The file's contents.
    pub bytes: &'a [u8],
}

impl PemFile<'_> {
    fn bad(&self, e: pem::Error) -> TlsError {
        TlsError::BadPem {
            key: self.key,
            path: self.path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    pub(super) fn unusable(&self, reason: impl std::fmt::Display) -> TlsError {
        TlsError::Unusable {
            key: self.key,
            path: self.path.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    /// Every certificate in the file, in order (a chain: the leaf first); at least one.
    pub fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certs = CertificateDer::pem_slice_iter(self.bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.bad(e))?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                key: self.key,
                path: self.path.to_path_buf(),
            });
        }
        Ok(certs)
    }

    /// The first private key in the file (PKCS#8, PKCS#1 or SEC1).
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        match PrivateKeyDer::from_pem_slice(self.bytes) {
            Ok(k) => Ok(k),
            Err(pem::Error::NoItemsFound) => Err(TlsError::NoKey {
                key: self.key,
                path: self.path.to_path_buf(),
            }),
            Err(e) => Err(self.bad(e)),
        }
    }

    /// The file's certificates as trust anchors.
    pub fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in self.certificates()? {
            roots
                .add(cert)
                .map_err(|e| self.unusable(format!("not a usable CA certificate: {e}")))?;
        }
        Ok(roots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> PemFile<'_> {
        PemFile {
            key: "tls_cert_file",
            path: Path::new("/etc/pgcorral/server.crt"),
            bytes,
        }
    }

    #[test]
    fn an_empty_file_has_no_certificate_and_no_key() {
        let e = file(b"").certificates().unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("general.tls_cert_file: /etc/pgcorral/server.crt"),
            "{msg}"
        );
        assert!(matches!(
            file(b"").private_key().unwrap_err(),
            TlsError::NoKey { .. }
        ));
    }

    #[test]
    fn a_damaged_block_is_bad_pem() {
        let text = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let e = file(text).certificates().unwrap_err();
        assert!(matches!(e, TlsError::BadPem { .. }), "{e}");
    }
}
