//! [`QueueManager`] for [`PgQueue`]: search with keyset paging (`key >
//! $after ORDER BY key`), the audited operator actions, and the audit log.
//!
//! A search narrows by the indexed fields in SQL (direction, port, status,
//! conversation, key range) and decides the rest with [`Search::matches`],
//! the one definition of a match, reading rows in chunks until the page is
//! full or [`SCAN_BUDGET`] rows were looked at.

use std::fmt::Write as _;

use postgres::types::ToSql;

use super::super::manage::{
    AuditEntry, Chunk, Edit, MAX_PAGE, MessageSummary, NewAudit, Page, PageRequest, QueueManager,
    SCAN_BUDGET, Search,
};
use super::super::rules::OperatorAction;
use super::{
    Equals, PgQueue, SUMMARY_COLS, Tx, apply_operator, apply_transition, key_i64, message, now_ms,
    sql_error, status_of, stmt_error,
};
use crate::queue::{MessageKey, QueueError, Status};

/// Rows read per query of a search.
const CHUNK: i64 = 1000;

fn write_audit(
    t: &mut Tx<'_>,
    audit: &NewAudit,
    messages: &[MessageKey],
) -> Result<u64, QueueError> {
    let keys: Vec<i64> = messages.iter().map(|&k| key_i64(k)).collect();
    let row = t
        .query_one(
            "INSERT INTO audit (time_ms, who, action, messages, detail) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &(now_ms() as i64),
                &audit.who,
                &audit.action,
                &keys,
                &audit.detail,
            ],
        )
        .map_err(stmt_error)?;
    Ok(row.get::<_, i64>(0) as u64)
}

fn audit_entry(r: &postgres::Row) -> AuditEntry {
    let keys: Vec<i64> = r.get(4);
    AuditEntry {
        id: r.get::<_, i64>(0) as u64,
        time_ms: r.get::<_, i64>(1) as u64,
        who: r.get(2),
        action: r.get(3),
        messages: keys.into_iter().map(|k| k as u64).collect(),
        detail: r.get(5),
    }
}

const AUDIT_COLS: &str = "id, time_ms, who, action, messages, detail";

impl QueueManager for PgQueue {
    fn search(
        &self,
        search: &Search,
        page: &PageRequest,
    ) -> Result<Page<MessageSummary>, QueueError> {
        let limit = page.limit.clamp(1, MAX_PAGE);
        let end = page.max_key.map_or(i64::MAX, key_i64);
        let mut after = page.after.map_or(0, key_i64);
        let mut out = Page {
            items: Vec::new(),
            next: None,
            scanned: 0,
        };
        let mut sql = format!("SELECT {SUMMARY_COLS} FROM messages WHERE key > $1 AND key <= $2");
        let equals = Equals::new(
            search.direction,
            &search.port,
            search.status,
            &search.conversation_id,
        );
        let fixed = equals.write(&mut sql, 2);
        if let Some(from) = search.from_ms {
            let _ = write!(sql, " AND created_ms >= {}", from.min(i64::MAX as u64));
        }
        if let Some(to) = search.to_ms {
            let _ = write!(sql, " AND created_ms < {}", to.min(i64::MAX as u64));
        }
        let _ = write!(sql, " ORDER BY key LIMIT {CHUNK}");
        let mut conn = self.pool.get().map_err(super::pool_error)?;
        let mut full = false;
        let mut last = None;
        'chunks: loop {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&after, &end];
            params.extend(fixed.iter().copied());
            let rows = conn.query(&sql, &params).map_err(sql_error)?;
            let n = rows.len();
            for row in &rows {
                let m = message(row)?;
                out.scanned += 1;
                last = Some(m.key);
                let s = MessageSummary::from(&m);
                if search.matches(&s) {
                    out.items.push(s);
                }
                if out.items.len() >= limit || out.scanned >= SCAN_BUDGET {
                    full = true;
                    break 'chunks;
                }
            }
            if (n as i64) < CHUNK {
                break;
            }
            after = last.map_or(after, key_i64);
        }
        if full && last.map(key_i64) != Some(end) {
            out.next = last;
        }
        Ok(out)
    }

    fn operate(
        &self,
        key: MessageKey,
        action: OperatorAction,
        edit: Option<Edit>,
        audit: &NewAudit,
    ) -> Result<Option<Status>, QueueError> {
        let status = self.transaction(|t| {
            let row = t
                .query_opt(
                    "SELECT status FROM messages WHERE key = $1 FOR UPDATE",
                    &[&key_i64(key)],
                )
                .map_err(stmt_error)?
                .ok_or(QueueError::NotFound { key })?;
            let before = status_of(key, row.get(0))?;
            apply_operator(t, key, before, action)?;
            let after = t
                .query_opt(
                    "SELECT status FROM messages WHERE key = $1",
                    &[&key_i64(key)],
                )
                .map_err(stmt_error)?
                .map(|r| status_of(key, r.get(0)))
                .transpose()?;
            if let Some(edit) = &edit {
                if after.is_none() {
                    return Err(QueueError::not_allowed(key, "edit", Status::Ready));
                }
                let (message_id, action) = edit.header.clone().unzip();
                t.execute(
                    "UPDATE messages SET content = $2, message_id = coalesce($3, message_id), \
                     action = coalesce($4, action), updated_ms = $5 WHERE key = $1",
                    &[
                        &key_i64(key),
                        &edit.content,
                        &message_id,
                        &action,
                        &(now_ms() as i64),
                    ],
                )
                .map_err(stmt_error)?;
                let h = &edit.history;
                t.execute(
                    "INSERT INTO history (message_id, time_ms, message_key, port, stage, \
                     plugins, content) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &h.message_id,
                        &(h.time_ms as i64),
                        &h.message_key.map(key_i64),
                        &h.port,
                        &h.stage,
                        &super::plugins_text(&h.plugins),
                        &h.content,
                    ],
                )
                .map_err(stmt_error)?;
            }
            write_audit(t, audit, &[key])?;
            if after == Some(Status::Ready) && before != Status::Ready {
                self.notify(t)?;
            }
            Ok(after)
        })?;
        self.signal.bump();
        Ok(status)
    }

    fn operate_many(
        &self,
        keys: &[MessageKey],
        action: OperatorAction,
        unchanged_since: Option<u64>,
        audit: &NewAudit,
    ) -> Result<Chunk, QueueError> {
        let wanted: Vec<i64> = keys.iter().map(|&k| key_i64(k)).collect();
        let chunk = self.transaction(|t| {
            let mut chunk = Chunk::default();
            let rows = t
                .query(
                    "SELECT key, status, updated_ms FROM messages WHERE key = ANY($1) \
                     ORDER BY key FOR UPDATE",
                    &[&wanted],
                )
                .map_err(stmt_error)?;
            let found: std::collections::HashMap<u64, (i16, i64)> = rows
                .iter()
                .map(|r| (r.get::<_, i64>(0) as u64, (r.get(1), r.get(2))))
                .collect();
            let mut released = false;
            for &key in keys {
                let Some(&(code, updated)) = found.get(&key) else {
                    chunk.changed.push(key);
                    continue;
                };
                if unchanged_since.is_some_and(|t| updated as u64 > t) {
                    chunk.changed.push(key);
                    continue;
                }
                let status = status_of(key, code)?;
                match super::super::rules::operator(action, key, status) {
                    Ok(super::super::rules::Transition::Unchanged) => chunk.unchanged.push(key),
                    Ok(transition) => {
                        released |= apply_transition(t, key, transition)?;
                        chunk.done.push(key);
                    }
                    Err(e @ QueueError::NotAllowed { .. }) => {
                        chunk.refused.push((key, e.to_string()))
                    }
                    Err(e) => return Err(e),
                }
            }
            if !chunk.done.is_empty() {
                write_audit(t, audit, &chunk.done)?;
            }
            if released {
                self.notify(t)?;
            }
            Ok(chunk)
        })?;
        self.signal.bump();
        Ok(chunk)
    }

    fn record_audit(&self, audit: &NewAudit) -> Result<u64, QueueError> {
        self.transaction(|t| write_audit(t, audit, &[]))
    }

    fn audit_log(&self, before: Option<u64>, limit: usize) -> Result<Page<AuditEntry>, QueueError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let before = before.map_or(i64::MAX, key_i64);
        let rows = self.read(|c| {
            c.query(
                &format!("SELECT {AUDIT_COLS} FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2"),
                &[&before, &(limit as i64 + 1)],
            )
        })?;
        let mut out = Page {
            items: Vec::new(),
            next: None,
            scanned: rows.len() as u64,
        };
        for row in &rows {
            if out.items.len() == limit {
                out.next = out.items.last().map(|e: &AuditEntry| e.id);
                break;
            }
            out.items.push(audit_entry(row));
        }
        Ok(out)
    }

    fn message_audit(&self, key: MessageKey) -> Result<Vec<AuditEntry>, QueueError> {
        let rows = self.read(|c| {
            c.query(
                &format!(
                    "SELECT {AUDIT_COLS} FROM audit WHERE messages @> ARRAY[$1::bigint] \
                     ORDER BY id"
                ),
                &[&key_i64(key)],
            )
        })?;
        Ok(rows.iter().map(audit_entry).collect())
    }

    fn oldest(&self) -> Result<Vec<(Status, MessageKey, u64)>, QueueError> {
        let mut out = Vec::new();
        let mut conn = self.pool.get().map_err(super::pool_error)?;
        for status in Status::ALL {
            let row = conn
                .query_opt(
                    "SELECT key, created_ms FROM messages WHERE status = $1 ORDER BY key LIMIT 1",
                    &[&i16::from(status.code())],
                )
                .map_err(sql_error)?;
            if let Some(r) = row {
                out.push((status, r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64));
            }
        }
        Ok(out)
    }

    fn prune(
        &self,
        policy: &crate::queue::retention::Retention,
        now_ms: u64,
        cursor: &mut crate::queue::retention::PruneCursor,
        budget: usize,
    ) -> Result<crate::queue::retention::Pruned, QueueError> {
        self.prune_step(policy, now_ms, cursor, budget)
    }
}
