//! Per-connection session state that does not need a socket: where the exchange with a
//! server stands, the session parameters a client expects, named prepared statements under
//! transaction pooling, and the session-level state a query leaves on its server connection.

pub mod exchange;
pub mod params;
pub mod pins;
pub mod prepared;
pub mod state;

pub use exchange::Exchange;
pub use params::{ParamSet, StartupParams};
