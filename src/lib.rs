//! rolegate: a federation identity broker. It verifies who someone is (OIDC tokens, and in time SAML
//! and its own users), decides with IAM policy semantics what they may assume, and issues AWS-style
//! temporary credentials through an STS that speaks AWS's wire protocol; requests signed with those
//! credentials are verified with SigV4.
//!
//! Data flows one way: `idp` → `policy` → `credentials` → `sts` (on the wire). `web::router` is the seam
//! shared by `serve` and the tests.
#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod iam;
pub mod idp;
pub mod limit;
pub mod maintenance;
pub mod mapping;
pub mod metrics;
pub mod policy;
pub mod portal;
pub mod query;
pub mod request;
pub mod sigv4;
pub mod sso;
pub mod store;
pub mod sts;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
pub mod web;
