//! pgcorral's I/O-free core: the wire protocol, authentication, configuration and session
//! logic. The actor system that binds it to sockets lives in `actors/` (the binary).

pub mod admin;
pub mod auth;
pub mod config;
pub mod protocol;
pub mod route;
pub mod session;
pub mod stats;
pub mod tls;
