//! Routing decisions without I/O: which role a statement needs (read/write classification with
//! PostgreSQL's own parser), the SQL extensions clients use to steer routing, and how a server
//! is picked among the eligible ones.

pub mod balance;
pub mod classify;
pub mod extension;
pub mod hint;
pub mod role;
pub mod sharding;
pub mod sharding_key;

pub use balance::pick;
pub use classify::{classify, Access, ClassifyCache};
pub use extension::{parse_extension, Extension, ShardSetting};
pub use hint::parse_hint;
pub use role::{RoleSetting, Want};
