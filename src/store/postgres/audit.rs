//! The audit log: batches appended in one transaction, queries filtered and ordered by time.

use super::{from_pg, PgStore};
use crate::store::{check_audit_batch, AuditLog, AuditQuery, AuditRecord, Result};
use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

/// Rows per audit `INSERT`. A batch of at most this many (the audit writer's batches) is one
/// statement, one round trip; a longer one is several statements in one transaction.
pub const AUDIT_ROWS_PER_STATEMENT: usize = 1_000;

/// Appends audit rows given as arrays, in order, so that of two rows with the same `(time_ms, id)`
/// (in the batch or stored) the first is kept.
const AUDIT_INSERT: &str = "INSERT INTO audit (time_ms, id, action, principal, decision, json)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     ON CONFLICT (time_ms, id) DO NOTHING";

fn row_audit(r: &tokio_postgres::Row) -> Result<AuditRecord> {
    Ok(AuditRecord {
        time_ms: r.try_get(0).map_err(from_pg)?,
        id: r.try_get(1).map_err(from_pg)?,
        action: r.try_get(2).map_err(from_pg)?,
        principal: r.try_get(3).map_err(from_pg)?,
        decision: r.try_get(4).map_err(from_pg)?,
        json: r.try_get(5).map_err(from_pg)?,
    })
}

/// One statement's rows as the arrays `AUDIT_INSERT` takes.
struct Columns<'a> {
    times: Vec<i64>,
    ids: Vec<&'a str>,
    actions: Vec<&'a str>,
    principals: Vec<Option<&'a str>>,
    decisions: Vec<&'a str>,
    jsons: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(rows: &'a [AuditRecord]) -> Self {
        Self {
            times: rows.iter().map(|r| r.time_ms).collect(),
            ids: rows.iter().map(|r| r.id.as_str()).collect(),
            actions: rows.iter().map(|r| r.action.as_str()).collect(),
            principals: rows.iter().map(|r| r.principal.as_deref()).collect(),
            decisions: rows.iter().map(|r| r.decision.as_str()).collect(),
            jsons: rows.iter().map(|r| r.json.as_str()).collect(),
        }
    }

    async fn insert(
        &self,
        c: &impl GenericClient,
        st: &tokio_postgres::Statement,
    ) -> std::result::Result<(), tokio_postgres::Error> {
        let params: [&(dyn ToSql + Sync); 6] = [
            &self.times,
            &self.ids,
            &self.actions,
            &self.principals,
            &self.decisions,
            &self.jsons,
        ];
        c.execute(st, &params).await.map(drop)
    }
}

#[async_trait]
impl AuditLog for PgStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        check_audit_batch(records)?;
        if records.is_empty() {
            return Ok(());
        }
        // On the audit connections (see `PgStore::audit_db`), whose buffers grow to the largest
        // statement sent and keep that size.
        self.audit_db
            .with("appending audit records", |mut c| async move {
                let st = c.prepare_cached(AUDIT_INSERT).await.map_err(from_pg)?;
                if records.len() <= AUDIT_ROWS_PER_STATEMENT {
                    // One statement is atomic by itself.
                    return Columns::of(records)
                        .insert(&**c, &st)
                        .await
                        .map_err(from_pg);
                }
                let tx = c.transaction().await.map_err(from_pg)?;
                for chunk in records.chunks(AUDIT_ROWS_PER_STATEMENT) {
                    Columns::of(chunk)
                        .insert(&*tx, &st)
                        .await
                        .map_err(from_pg)?;
                }
                tx.commit().await.map_err(from_pg)
            })
            .await
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        // NULL parameters switch a filter off, so that one prepared statement serves every query.
        let sql = if q.newest_first {
            "SELECT time_ms, id, action, principal, decision, json FROM audit
             WHERE ($1::bigint IS NULL OR time_ms >= $1) AND ($2::bigint IS NULL OR time_ms < $2)
               AND ($3::text IS NULL OR action = $3) AND ($4::text IS NULL OR principal = $4)
               AND ($5::text IS NULL OR decision = $5)
             ORDER BY time_ms DESC, id DESC LIMIT $6"
        } else {
            "SELECT time_ms, id, action, principal, decision, json FROM audit
             WHERE ($1::bigint IS NULL OR time_ms >= $1) AND ($2::bigint IS NULL OR time_ms < $2)
               AND ($3::text IS NULL OR action = $3) AND ($4::text IS NULL OR principal = $4)
               AND ($5::text IS NULL OR decision = $5)
             ORDER BY time_ms, id LIMIT $6"
        };
        self.db
            .query(
                "querying the audit log",
                sql,
                &[
                    &q.since_ms,
                    &q.until_ms,
                    &q.action,
                    &q.principal,
                    &q.decision,
                    &limit,
                ],
            )
            .await?
            .iter()
            .map(row_audit)
            .collect()
    }
}
