//! Support code shared by the integration tests: real external components started on loopback.
pub mod app;
pub mod idp;
pub mod signing;
