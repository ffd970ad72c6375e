//! I/O-free authentication core: stored secrets, MD5 password challenges and SCRAM-SHA-256
//! exchanges, for both the client side (pooler to PostgreSQL) and the server side (application
//! to pooler); SCRAM pass-through keys; the `auth_file` and `auth_hba_file` formats; the
//! cache policy of secrets fetched with `auth_query`.
//!
//! Nothing here reads or writes sockets; callers feed in the bytes of the protocol messages and
//! send out the bytes returned.

mod error;
pub mod fetched;
pub mod hba;
pub mod md5;
pub mod password;
pub mod scram;
pub mod secret;
pub mod userlist;

pub use self::md5::{md5_hex, md5_response, md5_secret, md5_verify};
pub use error::AuthError;
pub use password::verify_password;
pub use scram::{
    salted_password, ClientKeys, SaltedPasswordCache, ScramClient, ScramServer, ServerFirst,
    MAX_ITERATIONS, MECHANISM,
};
pub use secret::{ScramVerifier, Secret};
