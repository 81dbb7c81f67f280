//! rolegate: a federation identity broker. It verifies who someone is (OpenID Connect tokens, SAML
//! assertions, its own users with MFA), decides with IAM policy semantics what they may assume, and
//! issues AWS-style temporary credentials through an STS that speaks AWS's wire protocol; requests
//! signed with those credentials are verified with SigV4.
//!
//! Imports point down the layers (ARCHITECTURE.md): leaves (`config`, `policy`, `credentials`,
//! `sigv4`, `store`, …) → identity (`idp`) → state (`app`, `query`) → the decision core (`authn`,
//! `authz`, `mapping`) → edges (`sts`, `iam`, `sso`, `portal`, `web`, `cli`) → wiring
//! (`maintenance`, `main`). `web::router` is the seam shared by `serve` and the tests.
#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cpu_pool;
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
pub mod scim;
pub mod secret;
pub mod sigv4;
pub mod sso;
pub mod store;
pub mod sts;
pub mod telemetry;
/// The shared test fixture (a configuration builder and the app it builds, requests through the
/// router). Compiled for the unit tests and, through the `testing` feature that only the package's
/// dev-dependency on itself enables, for the integration tests; never part of a release build.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod web;
