//! The root bootstrap in the browser (`/admin/bootstrap`): the one-time token from the first
//! start's log, root's password, then root's authenticator app (a QR code and the key) and two
//! codes of it. The same two steps as `POST /bootstrap` and `rolegate root bootstrap`, rate-limited
//! and audited the same way; the token is the credential, so the forms carry no session, but they
//! must come from our own pages (the Origin check of the portal's forms).

use super::{refused, with_status};
use crate::app::App;
use crate::portal::PortalRequest;
use crate::web::directory::{finish_root, start_root, AdminError};
use askama::Template;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

/// The bootstrap page.
pub const BOOTSTRAP: &str = "/admin/bootstrap";

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(BOOTSTRAP, get(form).post(start))
        .route("/admin/bootstrap/finish", post(finish))
}

#[derive(Template)]
#[template(path = "admin/bootstrap.html")]
struct StartPage<'a> {
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "admin/bootstrap_mfa.html")]
struct MfaPage<'a> {
    token: &'a str,
    qr_svg: String,
    secret_groups: String,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "admin/bootstrap_done.html")]
struct DonePage;

/// Whether root has its password and an MFA device already.
async fn root_ready(app: &App) -> bool {
    match app.directory.as_deref() {
        Some(d) => d
            .user(crate::idp::local::ROOT)
            .await
            .is_ok_and(|u| u.password_hash.is_some() && u.has_mfa()),
        None => false,
    }
}

async fn form(State(app): State<Arc<App>>) -> Response {
    if app.directory.is_none() {
        return no_directory();
    }
    if root_ready(&app).await {
        return crate::portal::page(DonePage);
    }
    crate::portal::page(StartPage { error: None })
}

fn no_directory() -> Response {
    refused(
        StatusCode::NOT_FOUND,
        "No directory",
        "rolegate has no directory of its own here: configure at least one account.",
        "/",
        "Home",
    )
}

/// The request's form, from our own page (the portal's Origin rule), and the client's address;
/// without a directory, the page that says there is none.
async fn our_form(app: &App, req: Request) -> Result<(PortalRequest, SocketAddr), Response> {
    if app.directory.is_none() {
        return Err(no_directory());
    }
    let (r, source) = super::form_of(req).await?;
    if let Err(why) = crate::portal::session::origin_ok(&r.headers, &app.config.public_url) {
        return Err(crate::portal::PortalError::Forged(why).into_response());
    }
    Ok((r, source))
}

fn refusal_text(e: &AdminError) -> String {
    if e.status() == StatusCode::TOO_MANY_REQUESTS {
        "Too many attempts from this address; wait a minute and try again.".into()
    } else {
        e.message().to_string()
    }
}

async fn start(State(app): State<Arc<App>>, req: Request) -> Response {
    let (r, source) = match our_form(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let token = r.field("token").unwrap_or("").trim();
    let password = r.field("password").unwrap_or("");
    let again = |error: &str| {
        with_status(
            crate::portal::page(StartPage { error: Some(error) }),
            StatusCode::BAD_REQUEST,
        )
    };
    if token.is_empty() || password.is_empty() {
        return again("Enter the bootstrap token from rolegate's log and a password for root.");
    }
    if r.field("confirm").unwrap_or("") != password {
        return again("The two passwords differ.");
    }
    match start_root(&app, source, token, password).await {
        Ok(v) => {
            let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            let qr = match crate::portal::mfa::qr_svg(&text("uri")) {
                Ok(q) => q,
                Err(e) => return e.into_response(),
            };
            crate::portal::page(MfaPage {
                token,
                qr_svg: qr,
                secret_groups: group(&text("secret_base32")),
                error: None,
            })
        }
        Err(e) => {
            let status = e.status();
            with_status(
                crate::portal::page(StartPage {
                    error: Some(&refusal_text(&e)),
                }),
                status,
            )
        }
    }
}

/// A base32 key in groups of four, as authenticator apps show them.
fn group(b32: &str) -> String {
    b32.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn finish(State(app): State<Arc<App>>, req: Request) -> Response {
    let (r, source) = match our_form(&app, req).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let token = r.field("token").unwrap_or("").trim();
    let (code1, code2) = (
        r.field("code1").unwrap_or("").trim(),
        r.field("code2").unwrap_or("").trim(),
    );
    match finish_root(&app, source, token, code1, code2).await {
        Ok(_) => crate::portal::page(DonePage),
        Err(e) => {
            // The device waits for its codes: show the page to enter them again, without the key
            // (it was shown once; a root that lost it starts over with a new token).
            let status = e.status();
            with_status(
                crate::portal::page(MfaPage {
                    token,
                    qr_svg: String::new(),
                    secret_groups: String::new(),
                    error: Some(&refusal_text(&e)),
                }),
                status,
            )
        }
    }
}
