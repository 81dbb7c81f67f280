//! Recovery codes: the page that shows a new set once, and regenerating the set.

use super::security::{needs_fresh_mfa, SecurityForm};
use super::{fresh, now};
use crate::app::App;
use crate::audit::Outcome;
use crate::portal::extract::form_action;
use crate::portal::pages::{page, refuse, refuse_internal};
use crate::portal::{recovery, PortalError};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use std::sync::Arc;

#[derive(Template)]
#[template(path = "portal/recovery-codes.html")]
pub(super) struct CodesPage<'a> {
    pub(super) who: String,
    pub(super) csrf: &'a str,
    pub(super) intro: &'a str,
    pub(super) codes: Vec<String>,
}

form_action!(
    /// A new set of recovery codes.
    RegenerateRecoveryCodes = "portal:RegenerateRecoveryCodes"
);

/// A new set of recovery codes (needs a fresh MFA); the old set stops working.
pub(super) async fn recovery_regenerate(
    State(app): State<Arc<App>>,
    SecurityForm {
        s, user, mut ev, ..
    }: SecurityForm<RegenerateRecoveryCodes>,
) -> Response {
    if !user.has_mfa() {
        return refuse(
            &app,
            ev,
            format!("user {} has no MFA method", user.name),
            PortalError::BadRequest("no MFA method".into()),
        );
    }
    if !fresh(s.record.identity.mfa_time, now(&app)) {
        return needs_fresh_mfa(&app, ev, "regenerating recovery codes");
    }
    let person = recovery::local_person(&user.user_id);
    let codes = match recovery::generate(app.store.as_ref(), &person, now(&app)).await {
        Ok(c) => c,
        Err(e) => return refuse_internal(&app, ev, e),
    };
    ev.outcome(Outcome::Allow);
    ev.reason = Some(format!(
        "{} new recovery codes; the old ones no longer work",
        codes.len()
    ));
    app.audit.record(ev);
    page(CodesPage {
        who: s.record.identity.display(),
        csrf: &s.record.csrf,
        intro: "Your new recovery codes. The old ones no longer work. Keep these somewhere safe: each signs you in once when you do not have your app. They are shown only now.",
        codes,
    })
}
