//! The TLS configurations in force, built from the files `[general]` names. Files are read
//! on the main thread at start and on tokio's blocking pool on RELOAD, never on an arbiter
//! thread; `Shared::tls` holds the result behind an `ArcSwap`, so a reload changes what new
//! connections get while established sessions keep theirs.

use std::hash::{Hash, Hasher};
use std::path::Path;

use pgcorral::config::{General, TlsMode};
use pgcorral::tls::{
    acceptor_config, connector_config, describe_handshake_error, PemFile, TlsError,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// TLS toward clients and toward servers, as configured when last (re)loaded.
pub struct TlsConfigs {
    /// `client_tls_sslmode`.
    pub client_mode: TlsMode,
    /// The handshake toward clients; None when `client_tls_sslmode = "disable"`.
    pub acceptor: Option<TlsAcceptor>,
    /// `server_tls_sslmode`.
    pub server_mode: TlsMode,
    /// The handshake toward servers; None when `server_tls_sslmode = "disable"`.
    pub connector: Option<TlsConnector>,
    /// Changes when the server side's mode or file contents change (RELOAD then replaces
    /// the open server connections as they are released).
    pub server_fingerprint: u64,
}

impl TlsConfigs {
    /// No TLS on either side.
    #[cfg(test)]
    pub fn disabled() -> TlsConfigs {
        TlsConfigs {
            client_mode: TlsMode::Disable,
            acceptor: None,
            server_mode: TlsMode::Disable,
            connector: None,
            server_fingerprint: 0,
        }
    }

    /// Reads the PEM files and builds both sides. Blocking: call it where a thread may
    /// block (start, `spawn_blocking`). The error names the setting and its file.
    pub fn load(g: &General) -> Result<TlsConfigs, TlsError> {
        let acceptor = match (g.client_tls_sslmode, &g.tls_cert_file, &g.tls_key_file) {
            (TlsMode::Disable, _, _) => None,
            (mode, Some(cert), Some(key)) => {
                let cert = Pem::read("tls_cert_file", cert)?;
                let key = Pem::read("tls_key_file", key)?;
                let ca = g
                    .tls_ca_file
                    .as_deref()
                    .map(|p| Pem::read("tls_ca_file", p))
                    .transpose()?;
                let config = acceptor_config(
                    mode,
                    &cert.file(),
                    &key.file(),
                    ca.as_ref().map(Pem::file).as_ref(),
                )?;
                Some(TlsAcceptor::from(config))
            }
            // Validation requires both files with any mode but disable.
            (mode, cert, _) => {
                return Err(TlsError::Missing {
                    key: if cert.is_none() {
                        "tls_cert_file"
                    } else {
                        "tls_key_file"
                    },
                    mode_key: "client_tls_sslmode",
                    mode: mode.as_str(),
                })
            }
        };
        let mut fingerprint = std::collections::hash_map::DefaultHasher::new();
        g.server_tls_sslmode.as_str().hash(&mut fingerprint);
        let connector = match g.server_tls_sslmode {
            TlsMode::Disable => None,
            mode => {
                let ca = g
                    .server_tls_ca_file
                    .as_deref()
                    .map(|p| Pem::read("server_tls_ca_file", p))
                    .transpose()?;
                let identity = match (&g.server_tls_cert_file, &g.server_tls_key_file) {
                    (Some(c), Some(k)) => Some((
                        Pem::read("server_tls_cert_file", c)?,
                        Pem::read("server_tls_key_file", k)?,
                    )),
                    _ => None,
                };
                for pem in ca.iter().chain(identity.iter().flat_map(|(c, k)| [c, k])) {
                    pem.bytes.hash(&mut fingerprint);
                }
                let identity = identity.as_ref().map(|(c, k)| (c.file(), k.file()));
                let config = connector_config(
                    mode,
                    ca.as_ref().map(Pem::file).as_ref(),
                    identity.as_ref().map(|(c, k)| (c, k)),
                )?;
                Some(TlsConnector::from(config))
            }
        };
        Ok(TlsConfigs {
            client_mode: g.client_tls_sslmode,
            acceptor,
            server_mode: g.server_tls_sslmode,
            connector,
            server_fingerprint: fingerprint.finish(),
        })
    }
}

/// One file's contents, read.
struct Pem<'a> {
    key: &'static str,
    path: &'a Path,
    bytes: Vec<u8>,
}

impl<'a> Pem<'a> {
    fn read(key: &'static str, path: &'a Path) -> Result<Pem<'a>, TlsError> {
        let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
            key,
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Pem { key, path, bytes })
    }

    fn file(&self) -> PemFile<'_> {
        PemFile {
            key: self.key,
            path: self.path,
            bytes: &self.bytes,
        }
    }
}

/// A failed handshake in words: the TLS error inside the I/O error when there is one.
pub fn describe_io_error(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => describe_handshake_error(tls),
        None => e.to_string(),
    }
}
