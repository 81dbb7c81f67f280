//! TOTP enrolment, bound to the session that started it (QR code rendered here as inline SVG), its
//! confirmation with two consecutive codes, and the removal of the device.

use super::recovery_codes::CodesPage;
use super::security::{needs_fresh_mfa, refuse_on_page, SecurityForm};
use super::{
    fresh, has_totp, has_webauthn, local_user, now, session_cookie, with_status, ENROLMENT_KIND,
    ENROLMENT_SECONDS, SECURITY_PATH,
};
use crate::app::App;
use crate::audit::Outcome;
use crate::idp::local::{DirectoryError, MfaDevice, User};
use crate::portal::extract::{form_action, SignedIn};
use crate::portal::pages::{page, refuse, refuse_internal, with_cookies};
use crate::portal::session::{self, Session};
use crate::portal::{recovery, PortalError};
use crate::store::DirWrite;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The session that started a TOTP enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Enrolment {
    /// SHA-256 of that session's CSRF token.
    session: String,
    /// Unix seconds.
    started_at: i64,
}

fn enrolment_binding(s: &Session) -> String {
    session::key_of(&s.record.csrf)
}

/// Whether the TOTP enrolment of `user` was started by session `s` and can still be confirmed.
pub(super) async fn enrolment_is_ours(
    app: &App,
    user: &User,
    s: &Session,
) -> Result<bool, PortalError> {
    let Some(v) = app.store.dir_get(ENROLMENT_KIND, &user.user_id).await? else {
        return Ok(false);
    };
    let Ok(e) = serde_json::from_str::<Enrolment>(&v.value) else {
        return Ok(false);
    };
    let pending_device = user
        .mfa_devices
        .iter()
        .any(|d| matches!(d, MfaDevice::Totp { .. }) && !d.enabled());
    Ok(pending_device
        && crate::credentials::same_token(&e.session, &enrolment_binding(s))
        && now(app) - e.started_at <= ENROLMENT_SECONDS)
}

async fn end_enrolment(app: &App, user_id: &str) -> Result<(), PortalError> {
    if let Some(v) = app.store.dir_get(ENROLMENT_KIND, user_id).await? {
        app.store
            .dir_write(&[DirWrite::delete(ENROLMENT_KIND, user_id, v.version)])
            .await?;
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "portal/totp-enrol.html")]
struct EnrolPage<'a> {
    who: String,
    csrf: &'a str,
    message: Option<&'a str>,
    qr_svg: String,
    secret_groups: String,
}

/// The otpauth URI as an inline SVG QR code: no `style` attributes (the CSP holds), a name for
/// assistive technology.
pub fn qr_svg(uri: &str) -> Result<String, PortalError> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| PortalError::Internal(format!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    let body = svg.split_once("?>").map_or(svg.as_str(), |(_, b)| b);
    Ok(body.replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code to scan with your authenticator app\" ",
        1,
    ))
}

async fn render_enrolment(app: &App, s: &Session, user: &User, message: Option<&str>) -> Response {
    let Some(MfaDevice::Totp { secret, .. }) = user
        .mfa_devices
        .iter()
        .find(|d| matches!(d, MfaDevice::Totp { .. }) && !d.enabled())
    else {
        return Redirect::to(SECURITY_PATH).into_response();
    };
    let Some(d) = app.directory.as_ref() else {
        return PortalError::Internal("no directory".into()).into_response();
    };
    let b32 = secret.expose();
    let label = if user.root {
        "root"
    } else {
        user.name.as_str()
    };
    let raw = match crate::idp::local::totp::from_base32(b32) {
        Ok(r) => r,
        Err(e) => return PortalError::Internal(e.to_string()).into_response(),
    };
    let uri = match crate::idp::local::totp::uri(&raw, d.issuer(), label) {
        Ok(u) => u,
        Err(e) => return PortalError::Internal(e.to_string()).into_response(),
    };
    let qr = match qr_svg(&uri) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let groups: Vec<String> = b32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    page(EnrolPage {
        who: s.record.identity.display(),
        csrf: &s.record.csrf,
        message,
        qr_svg: qr,
        secret_groups: groups.join(" "),
    })
}

form_action!(
    /// Starting a TOTP enrolment.
    StartTotpEnrolment = "portal:StartTotpEnrolment"
);
form_action!(
    /// Confirming a TOTP enrolment.
    EnableTotp = "portal:EnableTotp"
);
form_action!(
    /// Removing the TOTP device.
    RemoveTotp = "portal:RemoveTotp"
);

/// The enrolment started by this session: QR code, secret and the confirmation form.
pub(super) async fn totp_page(State(app): State<Arc<App>>, SignedIn(s, _): SignedIn) -> Response {
    let user = match local_user(&app, &s.record.identity).await {
        Ok(Some(u)) => u,
        Ok(None) => return Redirect::to(SECURITY_PATH).into_response(),
        Err(e) => return e.into_response(),
    };
    match enrolment_is_ours(&app, &user, &s).await {
        Ok(true) => render_enrolment(&app, &s, &user, None).await,
        Ok(false) => Redirect::to(SECURITY_PATH).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Starts TOTP enrolment: a new secret, bound to this session.
pub(super) async fn totp_start(
    State(app): State<Arc<App>>,
    SecurityForm {
        s, user, mut ev, d, ..
    }: SecurityForm<StartTotpEnrolment>,
) -> Response {
    if has_totp(&user) {
        return refuse_on_page(
            &app,
            &s,
            ev,
            format!("user {} already has TOTP", user.name),
            "An authenticator app is already set up. Remove it first.",
        )
        .await;
    }
    if user.has_mfa() && !fresh(s.record.identity.mfa_time, now(&app)) {
        return needs_fresh_mfa(&app, ev, "adding an MFA method");
    }
    if let Err(e) = d.create_totp(&user.name).await {
        return refuse_internal(&app, ev, e);
    }
    let binding = Enrolment {
        session: enrolment_binding(&s),
        started_at: now(&app),
    };
    let doc = match serde_json::to_string(&binding) {
        Ok(d) => d,
        Err(e) => return PortalError::Internal(e.to_string()).into_response(),
    };
    let current = match app.store.dir_get(ENROLMENT_KIND, &user.user_id).await {
        Ok(c) => c,
        Err(e) => return PortalError::Store(e).into_response(),
    };
    match app
        .store
        .dir_write(&[DirWrite::put(
            ENROLMENT_KIND,
            &user.user_id,
            current.as_ref(),
            doc,
        )])
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                &app,
                ev,
                "TOTP enrolment started concurrently".into(),
                PortalError::Internal("enrolment started concurrently".into()),
            )
        }
        Err(e) => return PortalError::Store(e).into_response(),
    }
    ev.outcome(Outcome::Allow);
    ev.reason = Some(format!(
        "TOTP enrolment started for {}",
        d.totp_serial(&user)
    ));
    app.audit.record(ev);
    Redirect::to("/portal/security/totp").into_response()
}

/// Confirms the enrolment with two consecutive codes; the first MFA method also brings the
/// recovery codes, shown once. The codes prove the device: the session gets the MFA time.
pub(super) async fn totp_confirm(
    State(app): State<Arc<App>>,
    SecurityForm {
        s,
        user,
        mut ev,
        d,
        r,
        ..
    }: SecurityForm<EnableTotp>,
) -> Response {
    match enrolment_is_ours(&app, &user, &s).await {
        Ok(true) => {}
        Ok(false) => {
            return refuse_on_page(
                &app,
                &s,
                ev,
                "no TOTP enrolment of this session to confirm (another session's, expired or none)"
                    .into(),
                "There is no set-up to confirm in this session. Start again.",
            )
            .await;
        }
        Err(e) => return e.into_response(),
    }
    let code1 = r.field("code1").unwrap_or("").trim();
    let code2 = r.field("code2").unwrap_or("").trim();
    let serial = match d.enable_totp(&user.name, code1, code2).await {
        Ok(serial) => serial,
        Err(e @ (DirectoryError::Denied(_) | DirectoryError::Locked { .. })) => {
            let locked = matches!(e, DirectoryError::Locked { .. });
            ev.outcome(Outcome::Deny);
            ev.reason = Some(e.to_string());
            app.audit.record(ev);
            let message = if locked {
                "Too many wrong codes: try again in a few minutes."
            } else {
                "Those are not two consecutive codes of your app. Enter the code shown now and, after it changes, the next one."
            };
            return with_status(
                if locked {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::UNAUTHORIZED
                },
                render_enrolment(&app, &s, &user, Some(message)).await,
            );
        }
        Err(e) => return refuse_internal(&app, ev, e),
    };
    if let Err(e) = end_enrolment(&app, &user.user_id).await {
        return e.into_response();
    }
    let person = recovery::local_person(&user.user_id);
    let codes = match recovery::remaining(app.store.as_ref(), &person).await {
        Ok(Some(n)) if n > 0 => None,
        Ok(_) => match recovery::generate(app.store.as_ref(), &person, now(&app)).await {
            Ok(c) => Some(c),
            Err(e) => return PortalError::Internal(e.to_string()).into_response(),
        },
        Err(e) => return PortalError::Internal(e.to_string()).into_response(),
    };
    let token = match session::record_mfa(app.store.as_ref(), &s, now(&app)).await {
        Ok(t) => t,
        Err(e) => {
            return refuse(
                &app,
                ev,
                format!("{serial} enabled, but the session ended"),
                e,
            )
        }
    };
    ev.outcome(Outcome::Allow);
    ev.mfa = Some(true);
    ev.reason = Some(match &codes {
        Some(c) => format!("{serial} enabled; {} recovery codes made", c.len()),
        None => format!("{serial} enabled"),
    });
    app.audit.record(ev);
    let cookie = session_cookie(&app, &token);
    match codes {
        Some(codes) => with_cookies(
            page(CodesPage {
                who: s.record.identity.display(),
                csrf: &s.record.csrf,
                intro: "Your authenticator app is set up. Keep these recovery codes somewhere safe: each signs you in once when you do not have your app. They are shown only now.",
                codes,
            }),
            &[cookie],
        ),
        None => with_cookies(Redirect::to(SECURITY_PATH).into_response(), &[cookie]),
    }
}

/// Removes the TOTP device (needs a fresh MFA). Without any MFA method left, the recovery codes
/// go too.
pub(super) async fn totp_remove(
    State(app): State<Arc<App>>,
    SecurityForm {
        s, user, mut ev, d, ..
    }: SecurityForm<RemoveTotp>,
) -> Response {
    if !has_totp(&user) {
        return refuse(
            &app,
            ev,
            format!("user {} has no TOTP device to remove", user.name),
            PortalError::BadRequest("no TOTP device".into()),
        );
    }
    if user.root && !has_webauthn(&user) {
        return refuse_on_page(
            &app,
            &s,
            ev,
            "root signs in only with MFA: its last MFA device stays".into(),
            "The root user signs in only with MFA: set up another method before removing this one.",
        )
        .await;
    }
    if !fresh(s.record.identity.mfa_time, now(&app)) {
        return needs_fresh_mfa(&app, ev, "removing TOTP");
    }
    let serial = d.totp_serial(&user);
    if let Err(e) = d.delete_mfa_device(&user.name, &serial).await {
        return refuse_internal(&app, ev, e);
    }
    let left_mfa = match d.user_by_id(&user.user_id).await {
        Ok(Some(u)) => u.has_mfa(),
        Ok(None) => false,
        Err(e) => return PortalError::Internal(e.to_string()).into_response(),
    };
    if !left_mfa {
        if let Err(e) =
            recovery::delete(app.store.as_ref(), &recovery::local_person(&user.user_id)).await
        {
            return PortalError::Internal(e.to_string()).into_response();
        }
    }
    ev.outcome(Outcome::Allow);
    ev.reason = Some(if left_mfa {
        format!("{serial} removed")
    } else {
        format!("{serial} removed; no MFA method left, recovery codes deleted")
    });
    app.audit.record(ev);
    Redirect::to(SECURITY_PATH).into_response()
}
