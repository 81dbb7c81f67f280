//! The part of IAM's Query API (version `2010-05-08`) that rolegate answers: the policy simulator,
//! `SimulatePrincipalPolicy` and `SimulateCustomPolicy`.
//!
//! IAM requests arrive at the same endpoint as STS and are told apart by their `Version`
//! parameter; they are signed for the service `iam`. Responses and `ErrorResponse` documents carry
//! the IAM namespace. Errors are the Query API's [`QueryError`] (code, message, audit-only reason),
//! written in the IAM namespace; the codes IAM adds are `NoSuchEntity` (404) and `InvalidInput` (400).

mod simulate;

use crate::app::App;
use crate::audit::AuditEvent;
use crate::query::params::Params;
use crate::query::xml::XmlWriter;
use crate::query::{AwsCode, QueryError, QueryRequest};
use std::sync::Arc;

/// The IAM API version.
pub const API_VERSION: &str = "2010-05-08";

/// The IAM XML namespace.
pub const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// The SigV4 signing name of IAM requests.
pub const SIGNING_NAME: &str = "iam";

/// The IAM actions rolegate answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamAction {
    /// Signed: the policies of a configured role, plus optional extra policies, against requests.
    SimulatePrincipalPolicy,
    /// Signed: policies given in the request against requests.
    SimulateCustomPolicy,
}

impl IamAction {
    /// Parses an `Action` value (case-sensitive, as AWS).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "SimulatePrincipalPolicy" => Self::SimulatePrincipalPolicy,
            "SimulateCustomPolicy" => Self::SimulateCustomPolicy,
            _ => return None,
        })
    }

    /// AWS's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::SimulatePrincipalPolicy => "SimulatePrincipalPolicy",
            Self::SimulateCustomPolicy => "SimulateCustomPolicy",
        }
    }
}

/// Whether a request is an IAM request: its `Version` is IAM's. A `Version` given more than once
/// is not IAM's (the STS path reports it).
pub fn is_iam_request(params: &Params) -> bool {
    matches!(params.get("Version"), Ok(Some(API_VERSION)))
}

/// Answers one IAM request; the caller has already seen that its `Version` is IAM's.
pub async fn dispatch(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, QueryError> {
    let action = params.action(API_VERSION, IamAction::parse)?;
    // Both actions are the policy simulator's.
    simulate::simulate(app, req, params, ev, action).await
}

/// `NoSuchEntity` (404).
pub(crate) fn no_such_entity(message: impl Into<String>) -> QueryError {
    QueryError::new(AwsCode::NoSuchEntity, message)
}

/// `InvalidInput` (400).
pub(crate) fn invalid_input(message: impl Into<String>) -> QueryError {
    QueryError::new(AwsCode::InvalidInput, message)
}

/// A response document: `<{op}Response xmlns=IAM><{op}Result>` … written by `fill` …
/// `</{op}Result><ResponseMetadata>…</ResponseMetadata></{op}Response>`.
fn response(op: &str, request_id: &str, fill: impl FnOnce(&mut XmlWriter)) -> String {
    let root = format!("{op}Response");
    let mut w = XmlWriter::new();
    w.open_in(&root, NAMESPACE);
    let result = format!("{op}Result");
    w.open(&result);
    fill(&mut w);
    w.close(&result);
    w.open("ResponseMetadata");
    w.leaf("RequestId", request_id);
    w.close("ResponseMetadata");
    w.close(&root);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn params(s: &str) -> Params {
        Params::from_form(s.as_bytes())
    }

    #[test]
    fn iam_requests_are_told_apart_by_version() {
        assert!(is_iam_request(&params(
            "Action=SimulateCustomPolicy&Version=2010-05-08"
        )));
        assert!(!is_iam_request(&params(
            "Action=GetCallerIdentity&Version=2011-06-15"
        )));
        assert!(!is_iam_request(&params("Action=GetCallerIdentity")));
        assert!(!is_iam_request(&params(
            "Version=2010-05-08&Version=2010-05-08"
        )));
    }

    #[test]
    fn error_documents_use_the_iam_namespace_and_status() {
        let mut e = no_such_entity("The role with name x cannot be found.");
        e.request_id = "rid".into();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            e.to_xml(NAMESPACE),
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n<Error>\n\
             <Type>Sender</Type>\n<Code>NoSuchEntity</Code>\n\
             <Message>The role with name x cannot be found.</Message>\n</Error>\n\
             <RequestId>rid</RequestId>\n</ErrorResponse>\n"
        );
        assert_eq!(invalid_input("x").status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            QueryError::access_denied("x").status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn response_documents_wrap_the_result() {
        let doc = response("SimulateCustomPolicy", "rid", |w| {
            w.leaf("IsTruncated", "false")
        });
        assert_eq!(
            doc,
            "<SimulateCustomPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\n\
             <SimulateCustomPolicyResult>\n<IsTruncated>false</IsTruncated>\n\
             </SimulateCustomPolicyResult>\n<ResponseMetadata>\n<RequestId>rid</RequestId>\n\
             </ResponseMetadata>\n</SimulateCustomPolicyResponse>\n"
        );
    }
}
