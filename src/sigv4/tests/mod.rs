//! Verification against independent signers (aws-sigv4, botocore fixtures), mutations of signed
//! requests, and the refusals the security design asks for.

mod aws_c_auth;
mod botocore;
mod cache;
mod mutation;
mod negative;
mod oracle;
mod property;
mod support;
mod unsigned_headers;
