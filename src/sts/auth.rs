//! Authenticates a signed STS request: parse the SigV4 authorization, open the session token, check that
//! it belongs to the presented access key, verify the signature with the sealed secret, then expiry and
//! revocation. An unknown or foreign key costs the same signature work as a known one.

use super::{StsError, StsRequest};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::credentials::OpenSession;
use crate::sigv4::{self, SignedRequest, VerifyOptions};
use std::sync::Arc;

/// A secret used only to spend the same work on requests whose key is unknown.
const DECOY_SECRET: &str = "rolegate-decoy-secret-never-matches-0000";

/// The session behind a signed STS request.
pub async fn authenticate(
    app: &App,
    req: &StsRequest<'_>,
    ev: &mut AuditEvent,
) -> Result<Arc<OpenSession>, StsError> {
    authenticate_for(app, req, ev, "sts").await
}

/// The session behind a request signed for `service` (the SigV4 signing name, e.g. `iam`).
pub async fn authenticate_for(
    app: &App,
    req: &StsRequest<'_>,
    ev: &mut AuditEvent,
    service: &str,
) -> Result<Arc<OpenSession>, StsError> {
    let sreq = SignedRequest {
        method: req.method.as_str(),
        path: req.path,
        query: req.query,
        headers: req.headers,
        body: req.body,
        body_sha256: None,
    };
    let opts = VerifyOptions {
        service,
        regions: &app.config.sts_regions,
        max_skew: app.config.max_clock_skew,
        allow_unsigned_payload: false,
    };
    authenticate_signed(app, &sreq, &opts, ev)
}

/// The session behind any SigV4-signed request, verified with `opts`.
pub fn authenticate_signed(
    app: &App,
    sreq: &SignedRequest<'_>,
    opts: &VerifyOptions<'_>,
    ev: &mut AuditEvent,
) -> Result<Arc<OpenSession>, StsError> {
    let sreq = *sreq;
    let opts = *opts;
    let now = app.clock.now();
    let auth = sigv4::parse_authorization(&sreq).map_err(sig_error)?;
    let decoy = |reason: String| {
        let _ = sigv4::verify(&sreq, &auth, DECOY_SECRET, now, &opts);
        StsError::invalid_client_token(reason)
    };
    let Some(token) = auth.security_token.as_deref() else {
        return Err(decoy(format!(
            "access key {} has no session token and long-term keys are not known",
            auth.access_key_id
        )));
    };
    let claims = match app.keys.open_session(token) {
        Ok(c) => c,
        Err(e) => return Err(decoy(format!("session token: {e}"))),
    };
    // From here on the audit event names the session the token describes, refused or not.
    ev.principal = Some(claims.principal.arn());
    ev.access_key_id = Some(auth.access_key_id.clone());
    let presented = auth.access_key_id.as_bytes();
    let sealed = claims.access_key_id.as_bytes();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(presented, sealed)) {
        return Err(decoy(format!(
            "session token belongs to {}, not to the presented access key {}",
            claims.access_key_id, auth.access_key_id
        )));
    }
    let key = claims.signing_key(&auth.scope_date, &auth.region, &auth.service);
    sigv4::verify_with_key(&sreq, &auth, &key, now, &opts).map_err(sig_error)?;
    if claims.expires_at <= now.timestamp() {
        return Err(StsError::expired_token(
            "The security token included in the request is expired",
            format!(
                "session {} of {} expired at {}",
                claims.session_id,
                claims.principal.arn(),
                claims.expires_at
            ),
        ));
    }
    if let Some(r) = app.revocations.check(&claims) {
        return Err(StsError::expired_token(
            "The security token included in the request has been revoked",
            format!(
                "session {} of {} was issued before the revocation of {:?} at {}: {}",
                claims.session_id,
                claims.principal.arn(),
                r.scope,
                r.issued_before,
                r.reason
            ),
        ));
    }
    Ok(claims)
}

fn sig_error(e: sigv4::SigV4Error) -> StsError {
    StsError::signature(e.aws_code(), e.client_message(), e.to_string())
}
