//! Per-connection session state that does not need a socket: where the exchange with a
//! server stands, the session parameters a client expects, and named prepared statements
//! under transaction pooling.

pub mod exchange;
pub mod params;
pub mod prepared;

pub use exchange::Exchange;
pub use params::{ParamSet, StartupParams};
