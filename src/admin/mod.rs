//! The admin console's I/O-free half: the command grammar, PgBouncer's column lists, and
//! rendering result sets as PostgreSQL messages.

pub mod columns;
pub mod command;
pub mod result;

pub use command::{parse_command, AdminCommand, AdminParseError, ShowWhat};
pub use result::ResultSet;
