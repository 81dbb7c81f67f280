//! The audit log in the console: filters (time range, principal, action, decision, provider),
//! pages from the newest back, each event with its precise reason, and the same selection exported
//! as JSON lines or CSV. Reading it is `rolegate:ListAuditEvents` on `arn:aws:rolegate:::audit`,
//! itself audited.

use super::{failed, Admin, LIST_AUDIT};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::store::AuditQuery;
use crate::web::directory::AdminError;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::sync::Arc;

/// Events on one page.
pub const PAGE_SIZE: usize = 50;
/// Most events in one export.
pub const EXPORT_LIMIT: usize = 10_000;
/// Most events read to fill a page when a filter the store cannot apply (the provider) is set.
const SCAN_LIMIT: usize = 20_000;

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new().route("/admin/console/audit", get(page))
}

/// The filters, as the form sends them. Times are UTC, `YYYY-MM-DDTHH:MM` (what a
/// `datetime-local` field sends) or RFC 3339.
#[derive(Deserialize, Default, Clone)]
pub(super) struct Filters {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    principal: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    provider: String,
    /// Only events strictly older than this `time_ms:id` (the last of the previous page).
    #[serde(default)]
    before: String,
    /// `jsonl` or `csv` to download instead of a page.
    #[serde(default)]
    format: String,
}

/// A filter that does not parse, by field.
struct FilterError {
    field: &'static str,
    message: String,
}

/// Unix milliseconds of a time typed in a filter.
fn parse_time(field: &'static str, s: &str) -> Result<Option<i64>, FilterError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
                .map(|t| t.and_utc().timestamp_millis())
        });
    parsed.map(Some).map_err(|_| FilterError {
        field,
        message: format!("“{s}” is not a time: use YYYY-MM-DDTHH:MM (UTC) or RFC 3339."),
    })
}

impl Filters {
    /// The store query for these filters (the provider is applied to what it returns), and the
    /// cursor of the page.
    fn query(&self, limit: usize) -> Result<(AuditQuery, Option<(i64, String)>), FilterError> {
        let since_ms = parse_time("from", &self.from)?;
        let mut until_ms = parse_time("to", &self.to)?;
        let decision = self.decision.trim();
        if !["", "allow", "deny", "error"].contains(&decision) {
            return Err(FilterError {
                field: "decision",
                message: "The decision is allow, deny or error.".into(),
            });
        }
        let cursor = match self.before.split_once(':') {
            None if self.before.is_empty() => None,
            Some((ms, id)) if ms.parse::<i64>().is_ok() => {
                let ms = ms.parse::<i64>().unwrap_or_default();
                // Events of the cursor's millisecond are read again and those not older skipped.
                until_ms = Some(until_ms.map_or(ms + 1, |u| u.min(ms + 1)));
                Some((ms, id.to_string()))
            }
            _ => {
                return Err(FilterError {
                    field: "before",
                    message: "The page link is damaged; start from the newest events.".into(),
                })
            }
        };
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok((
            AuditQuery {
                since_ms,
                until_ms,
                action: text(&self.action),
                principal: text(&self.principal),
                decision: text(decision),
                limit,
                newest_first: true,
            },
            cursor,
        ))
    }

    /// The link to the page of events older than `last`.
    fn older(&self, last: &AuditEvent) -> String {
        let mut f = self.clone();
        f.before = format!("{}:{}", millis(last), last.request_id);
        f.format.clear();
        format!("/admin/console/audit?{}", f.encoded())
    }

    /// The link to this selection as `format`.
    fn export(&self, format: &str) -> String {
        let mut f = self.clone();
        f.before.clear();
        f.format = format.to_string();
        format!("/admin/console/audit?{}", f.encoded())
    }

    fn encoded(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("principal", &self.principal),
            ("action", &self.action),
            ("decision", &self.decision),
            ("provider", &self.provider),
            ("before", &self.before),
            ("format", &self.format),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }
}

fn millis(ev: &AuditEvent) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&ev.time).map_or(0, |t| t.timestamp_millis())
}

/// The events of the selection, newest first, at most `limit`, after the cursor; and whether the
/// scan for the provider filter stopped before the end.
async fn select(
    app: &App,
    f: &Filters,
    limit: usize,
) -> Result<Result<(Vec<AuditEvent>, bool), FilterError>, AdminError> {
    let (mut q, cursor) = match f.query(limit) {
        Ok(x) => x,
        Err(e) => return Ok(Err(e)),
    };
    let provider = f.provider.trim();
    app.audit.flush().await;
    // A filter the store cannot apply reads ahead; otherwise a page's worth is asked for, and the
    // loop below asks again only when the cursor's own millisecond or the provider left it short.
    let batch = if provider.is_empty() {
        // The event the cursor names is read again.
        limit + usize::from(cursor.is_some())
    } else {
        (limit * 4).clamp(200, 2_000)
    };
    // Where reading has got to, in the order of the page: only events strictly older are new.
    let mut reached = cursor;
    // How many of the events the next query returns were read already (those of the oldest
    // millisecond read, which it asks for again since a millisecond may hold more events than
    // one query returned).
    let mut read_again = 0;
    let mut out = Vec::new();
    let mut scanned = 0;
    loop {
        q.limit = batch + read_again;
        let events = crate::audit::query(app.store.as_ref(), &q)
            .await
            .map_err(|e| AdminError::internal(e.to_string()))?;
        let n = events.len();
        scanned += n;
        let oldest = events.last().map(|e| (millis(e), e.request_id.clone()));
        read_again = oldest.as_ref().map_or(0, |(ms, _)| {
            events.iter().filter(|e| millis(e) == *ms).count()
        });
        let fresh = |ev: &AuditEvent| {
            reached.as_ref().is_none_or(|(ms, id)| {
                let t = millis(ev);
                t < *ms || (t == *ms && ev.request_id.as_str() < id.as_str())
            })
        };
        out.extend(events.into_iter().filter(|e| {
            fresh(e) && (provider.is_empty() || e.provider.as_deref() == Some(provider))
        }));
        if out.len() >= limit || n < q.limit {
            out.truncate(limit);
            return Ok(Ok((out, false)));
        }
        if scanned >= SCAN_LIMIT {
            return Ok(Ok((out, true)));
        }
        // The next query: the oldest millisecond read again (its events read so far skipped), and
        // everything older.
        let Some((ms, id)) = oldest else {
            return Ok(Ok((out, false)));
        };
        q.until_ms = Some(ms.saturating_add(1));
        // The older of the two: a cursor may lie below all the events this query read again.
        let read = (ms, id);
        reached = Some(match reached {
            Some(cursor) if cursor < read => cursor,
            _ => read,
        });
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    admin: &'a Admin,
    f: &'a Filters,
    events: Vec<AuditEvent>,
    older: Option<String>,
    truncated: bool,
    error: Option<(&'static str, String)>,
    jsonl: String,
    csv: String,
}

impl AuditPage<'_> {
    fn error_on(&self, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    fn selected(&self, decision: &str) -> bool {
        self.f.decision == decision
    }
}

async fn page(State(app): State<Arc<App>>, admin: Admin, Query(f): Query<Filters>) -> Response {
    if let Err(e) = admin.read(&app, LIST_AUDIT).await {
        return failed(&e);
    }
    let export = match f.format.as_str() {
        "" => None,
        "jsonl" | "csv" => Some(f.format.as_str()),
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    let limit = if export.is_some() {
        EXPORT_LIMIT
    } else {
        PAGE_SIZE
    };
    let (events, truncated, error) = match select(&app, &f, limit).await {
        Ok(Ok((events, truncated))) => (events, truncated, None),
        Ok(Err(e)) => (Vec::new(), false, Some((e.field, e.message))),
        Err(e) => return failed(&e),
    };
    if let (Some(format), None) = (export, &error) {
        return download(format, &events);
    }
    let older = (events.len() == PAGE_SIZE)
        .then(|| events.last().map(|e| f.older(e)))
        .flatten();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = crate::portal::page(AuditPage {
        admin: &admin,
        jsonl: f.export("jsonl"),
        csv: f.export("csv"),
        f: &f,
        events,
        older,
        truncated,
        error,
    });
    super::with_status(page, status)
}

/// The columns of the CSV export.
const CSV_COLUMNS: &[&str] = &[
    "time",
    "request_id",
    "action",
    "decision",
    "principal",
    "provider",
    "subject",
    "role_arn",
    "source_ip",
    "error_code",
    "reason",
];

fn download(format: &str, events: &[AuditEvent]) -> Response {
    let (body, kind, name) = if format == "csv" {
        let mut out = CSV_COLUMNS.join(",");
        out.push_str("\r\n");
        for ev in events {
            let v = serde_json::to_value(ev).unwrap_or_default();
            let row: Vec<String> = CSV_COLUMNS
                .iter()
                .map(|c| {
                    csv_field(v.get(*c).map_or(String::new(), |x| match x {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => String::new(),
                        other => other.to_string(),
                    }))
                })
                .collect();
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        }
        (out, "text/csv; charset=utf-8", "audit.csv")
    } else {
        let mut out = String::new();
        for ev in events {
            out.push_str(&serde_json::to_string(ev).unwrap_or_default());
            out.push('\n');
        }
        (out, "application/x-ndjson", "audit.jsonl")
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a field a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.
fn csv_field(s: String) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}
