//! Statistics without I/O: latency histograms kept per arbiter in `Cell`s, and the
//! Prometheus text exposition format.

pub mod histogram;
pub mod prometheus;

pub use histogram::{Histogram, HistogramSnap};
pub use prometheus::Exposition;
