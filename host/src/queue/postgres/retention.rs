//! Pruning of the logs of a [`PgQueue`] (see `queue/retention.rs`): one
//! step is one transaction that looks at no more than `budget` records of
//! one table, from where the previous step stopped — the same rules as the
//! redb backend: the message log by age; a `MessageId`'s history as a
//! whole once its newest version is old enough and none is about a message
//! still queued; the exception and audit logs oldest first, by age and
//! count, never an entry about a message still queued.

use super::super::retention::{PruneCursor, PruneTable, Pruned, Retention};
use super::{PgQueue, Tx, key_i64, stmt_error};
use crate::queue::QueueError;

fn budget_i64(budget: usize) -> i64 {
    i64::try_from(budget.max(1)).unwrap_or(i64::MAX)
}

fn cut(now_ms: u64, age: Option<u64>) -> Option<i64> {
    age.map(|a| now_ms.saturating_sub(a).min(i64::MAX as u64) as i64)
}

/// A cutoff as the schema stores times (`None`: nothing is older).
fn as_i64(cutoff: Option<u64>) -> i64 {
    cutoff.map_or(i64::MIN, |c| c.min(i64::MAX as u64) as i64)
}

/// The time that keeps at most `max` of the times `newest_first` lists
/// (newest first, `OFFSET $1 LIMIT 1`): one past the first beyond.
fn count_cut(t: &mut Tx<'_>, newest_first: &str, max: u64) -> Result<Option<u64>, QueueError> {
    let offset = i64::try_from(max).unwrap_or(i64::MAX);
    let row = t.query_opt(newest_first, &[&offset]).map_err(stmt_error)?;
    Ok(row.map(|r| (r.get::<_, i64>(0).max(0) as u64).saturating_add(1)))
}

fn prune_log(
    t: &mut Tx<'_>,
    cutoff: i64,
    cursor: &mut PruneCursor,
    budget: usize,
) -> Result<u64, QueueError> {
    let after = cursor.after_text.clone().unwrap_or_default();
    let rows = t
        .query(
            "SELECT message_id, time_ms < $3 FROM message_log WHERE message_id > $1 \
             ORDER BY message_id LIMIT $2",
            &[&after, &budget_i64(budget), &cutoff],
        )
        .map_err(stmt_error)?;
    let old: Vec<String> = rows
        .iter()
        .filter(|r| r.get::<_, bool>(1))
        .map(|r| r.get(0))
        .collect();
    let n = t
        .execute(
            "DELETE FROM message_log WHERE message_id = ANY($1)",
            &[&old],
        )
        .map_err(stmt_error)?;
    match rows.last() {
        Some(r) if rows.len() >= budget.max(1) => cursor.after_text = Some(r.get(0)),
        _ => cursor.next_table(),
    }
    Ok(n)
}

fn prune_history(
    t: &mut Tx<'_>,
    cutoff: i64,
    cursor: &mut PruneCursor,
    budget: usize,
) -> Result<u64, QueueError> {
    let after = cursor.after_text.clone().unwrap_or_default();
    // The next MessageIds, each with whether its whole history may go.
    let rows = t
        .query(
            "WITH ids AS (SELECT DISTINCT message_id FROM history WHERE message_id > $1 \
                 ORDER BY message_id LIMIT $2) \
             SELECT h.message_id, max(h.time_ms) < $3 AND NOT bool_or(m.key IS NOT NULL) \
             FROM history h JOIN ids USING (message_id) \
             LEFT JOIN messages m ON m.key = h.message_key \
             GROUP BY h.message_id ORDER BY h.message_id",
            &[&after, &budget_i64(budget), &cutoff],
        )
        .map_err(stmt_error)?;
    let gone: Vec<String> = rows
        .iter()
        .filter(|r| r.get::<_, bool>(1))
        .map(|r| r.get(0))
        .collect();
    let n = t
        .execute("DELETE FROM history WHERE message_id = ANY($1)", &[&gone])
        .map_err(stmt_error)?;
    match rows.last() {
        Some(r) if rows.len() >= budget.max(1) => cursor.after_text = Some(r.get(0)),
        _ => cursor.next_table(),
    }
    Ok(n)
}

/// The exception or audit log (`table`), oldest first: entries older than
/// `cutoff` and the oldest beyond `max`, unless about a queued message
/// (`queued` is the SQL that says so for a row `e`).
fn prune_ordered(
    t: &mut Tx<'_>,
    table: &str,
    queued: &str,
    cutoff: Option<i64>,
    max: Option<u64>,
    cursor: &mut PruneCursor,
    budget: usize,
) -> Result<u64, QueueError> {
    let total: i64 = t
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .map_err(stmt_error)?
        .get(0);
    let mut excess = max.map_or(0, |m| (total.max(0) as u64).saturating_sub(m));
    let after = cursor.after_id.map_or(0, key_i64);
    let rows = t
        .query(
            &format!(
                "SELECT e.id, e.time_ms, {queued} FROM {table} e WHERE e.id > $1 \
                 ORDER BY e.id LIMIT $2"
            ),
            &[&after, &budget_i64(budget)],
        )
        .map_err(stmt_error)?;
    let mut old: Vec<i64> = Vec::new();
    let mut last = None;
    let mut ended = true;
    for (i, r) in rows.iter().enumerate() {
        let (id, time, keep): (i64, i64, bool) = (r.get(0), r.get(1), r.get(2));
        let too_old = cutoff.is_some_and(|c| time < c);
        if !too_old && excess == 0 {
            break;
        }
        if !keep {
            old.push(id);
            excess = excess.saturating_sub(1);
        }
        last = Some(id as u64);
        if i + 1 == budget.max(1) {
            ended = false;
        }
    }
    let n = t
        .execute(&format!("DELETE FROM {table} WHERE id = ANY($1)"), &[&old])
        .map_err(stmt_error)?;
    if ended {
        cursor.next_table();
    } else {
        cursor.after_id = last;
    }
    Ok(n)
}

impl PgQueue {
    /// One step of a pruning pass.
    pub(super) fn prune_step(
        &self,
        policy: &Retention,
        now_ms: u64,
        cursor: &mut PruneCursor,
        budget: usize,
    ) -> Result<Pruned, QueueError> {
        cursor.skip_kept(policy);
        if cursor.done() {
            return Ok(Pruned::default());
        }
        let start = cursor.clone();
        self.transaction(|t| {
            // A step run again (a conflict) starts where this one did.
            *cursor = start.clone();
            let mut pruned = Pruned::default();
            match cursor.table {
                PruneTable::MessageLog => {
                    let c = cursor.cutoff_by_age_and_count(
                        now_ms,
                        policy.message_log,
                        policy.message_log_max,
                        |max| {
                            count_cut(
                                t,
                                "SELECT time_ms FROM message_log \
                                 ORDER BY time_ms DESC OFFSET $1 LIMIT 1",
                                max,
                            )
                        },
                    )?;
                    pruned.message_log = prune_log(t, as_i64(c), cursor, budget)?;
                }
                PruneTable::History => {
                    let c = cursor.cutoff_by_age_and_count(
                        now_ms,
                        policy.history,
                        policy.history_max,
                        |max| {
                            count_cut(
                                t,
                                "SELECT max(time_ms) AS t FROM history GROUP BY message_id \
                                 ORDER BY t DESC OFFSET $1 LIMIT 1",
                                max,
                            )
                        },
                    )?;
                    pruned.history = prune_history(t, as_i64(c), cursor, budget)?;
                }
                PruneTable::Exceptions => {
                    pruned.exceptions = prune_ordered(
                        t,
                        "exceptions",
                        "EXISTS (SELECT 1 FROM messages m WHERE m.key = e.message_key)",
                        cut(now_ms, policy.exceptions),
                        policy.exceptions_max,
                        cursor,
                        budget,
                    )?;
                }
                PruneTable::Audit => {
                    pruned.audit = prune_ordered(
                        t,
                        "audit",
                        "EXISTS (SELECT 1 FROM messages m WHERE m.key = ANY(e.messages))",
                        cut(now_ms, policy.audit),
                        policy.audit_max,
                        cursor,
                        budget,
                    )?;
                }
                PruneTable::Done => {}
            }
            Ok(pruned)
        })
    }
}
