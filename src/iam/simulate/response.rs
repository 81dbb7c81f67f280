//! The response documents: `EvaluationResults`, `IsTruncated` and `Marker`.

use super::eval::{EvalResult, Outcome, Page};
use super::positions::Position;
use crate::iam::response;
use crate::policy::Effect;
use crate::query::xml::XmlWriter;

/// `EvalDecision`'s word for an effect.
fn decision_word(e: Effect) -> &'static str {
    match e {
        Effect::Allow => "allowed",
        Effect::ExplicitDeny => "explicitDeny",
        Effect::ImplicitDeny => "implicitDeny",
    }
}

fn write_position(w: &mut XmlWriter, name: &str, p: Position) {
    w.open(name);
    w.leaf("Line", &p.line.to_string());
    w.leaf("Column", &p.column.to_string());
    w.close(name);
}

/// `MatchedStatements`, `MissingContextValues`, `EvalDecisionDetails` and
/// `PermissionsBoundaryDecisionDetail`, shared by a result and its resource-specific results.
fn write_details(w: &mut XmlWriter, o: &Outcome) {
    w.open("MatchedStatements");
    for m in &o.matched {
        w.open("member");
        w.leaf("SourcePolicyId", &m.id);
        w.leaf("SourcePolicyType", m.source_type);
        if let Some((start, end)) = m.span {
            write_position(w, "StartPosition", start);
            write_position(w, "EndPosition", end);
        }
        w.close("member");
    }
    w.close("MatchedStatements");
    w.open("MissingContextValues");
    for k in &o.missing {
        w.leaf("member", k);
    }
    w.close("MissingContextValues");
    w.open("EvalDecisionDetails");
    for (source, effect) in &o.details {
        w.open("entry");
        w.leaf("key", source);
        w.leaf("value", decision_word(*effect));
        w.close("entry");
    }
    w.close("EvalDecisionDetails");
    if let Some(allowed) = o.allowed_by_boundary {
        w.open("PermissionsBoundaryDecisionDetail");
        w.leaf(
            "AllowedByPermissionsBoundary",
            if allowed { "true" } else { "false" },
        );
        w.close("PermissionsBoundaryDecisionDetail");
    }
}

fn write_result(w: &mut XmlWriter, r: &EvalResult) {
    w.open("member");
    w.leaf("EvalActionName", &r.action);
    w.leaf("EvalResourceName", &r.resource);
    w.leaf("EvalDecision", decision_word(r.outcome.decision));
    write_details(w, &r.outcome);
    if r.resource_specific {
        w.open("ResourceSpecificResults");
        w.open("member");
        w.leaf("EvalResourceName", &r.resource);
        w.leaf("EvalResourceDecision", decision_word(r.outcome.decision));
        write_details(w, &r.outcome);
        w.close("member");
        w.close("ResourceSpecificResults");
    }
    w.close("member");
}

/// The response document of `op` for one page of results.
pub(super) fn render(op: &str, page: &Page, request_id: &str) -> String {
    response(op, request_id, |w| {
        w.open("EvaluationResults");
        for r in &page.results {
            write_result(w, r);
        }
        w.close("EvaluationResults");
        w.leaf(
            "IsTruncated",
            if page.next.is_some() { "true" } else { "false" },
        );
        if let Some(next) = page.next {
            w.leaf("Marker", &next.to_string());
        }
    })
}
