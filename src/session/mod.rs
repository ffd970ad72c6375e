//! Per-connection session state that does not need a socket: where the exchange with a
//! server stands, and the session parameters a client expects.

pub mod exchange;
pub mod params;

pub use exchange::Exchange;
pub use params::{ParamSet, StartupParams};
