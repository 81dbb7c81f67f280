//! How resource policies combine with a session's own policies, and which condition keys only
//! rolegate may set, through the real edges: `POST /v1/authorize` (a downstream service hands over
//! a request signed by the `aws-sigv4` crate), STS `AssumeRole` (the role's trust policy is its
//! resource policy) and IAM's `SimulateCustomPolicy`/`SimulatePrincipalPolicy`, each sent over HTTP
//! to `web::router` served on 127.0.0.1.

#[path = "../support/mod.rs"]
mod support;

mod harness;

mod assume_role;
mod authorize;
mod session_keys;
mod simulate;
