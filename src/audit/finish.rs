//! The end of a request at an edge: its audit event recorded with the outcome of its answer.

use super::{AuditEvent, Auditor, EdgeError, Outcome};

impl Auditor {
    /// Records `ev` for a request answered with `result`: a refusal always (a fault where `fault`
    /// says so, a denial otherwise, with its code and precise reason), a success only when
    /// `record_allowed`. Gives `result` back to be answered.
    pub fn finish<T, E: EdgeError>(
        &self,
        mut ev: AuditEvent,
        result: Result<T, E>,
        record_allowed: bool,
        fault: impl FnOnce(&E) -> bool,
    ) -> Result<T, E> {
        match &result {
            Ok(_) if !record_allowed => return result,
            Ok(_) => ev.outcome(Outcome::Allow),
            Err(e) => {
                ev.outcome(if fault(e) {
                    Outcome::Error
                } else {
                    Outcome::Deny
                });
                ev.refused(e);
            }
        }
        self.record(ev);
        result
    }
}
