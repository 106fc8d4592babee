//! The PostgreSQL gateway queue's schema, created and migrated by Ferry
//! itself: numbered migrations, each applied once, in order, in one
//! transaction with the record of its number (`ferry_schema`). Hosts that
//! start at the same time take an advisory lock first, so one of them
//! migrates and the others find the work done.
//!
//! Text that is ordered or compared byte for byte (names, ports, the
//! ordered units, state keys) uses the `"C"` collation: a queue orders its
//! files alphabetically by their bytes, as the redb backend does, whatever
//! the database's locale.

use super::Tx as Transaction;

use super::sql_error;
use crate::queue::QueueError;

/// The migrations, in order: (number, SQL).
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
CREATE TABLE messages (
    key                bigint PRIMARY KEY,
    direction          smallint NOT NULL,
    port               text COLLATE "C" NOT NULL,
    status             smallint NOT NULL,
    name               text COLLATE "C" NOT NULL,
    position           integer NOT NULL,
    message_id         text NOT NULL,
    action             text NOT NULL,
    conversation_id    text COLLATE "C",
    batch_id           text COLLATE "C",
    request_message_id text,
    content            text NOT NULL,
    error              text,
    attempts           integer NOT NULL DEFAULT 0,
    created_ms         bigint NOT NULL,
    updated_ms         bigint NOT NULL,
    -- The claim: who holds the message in flight, under which lease.
    owner              text,
    epoch              bigint,
    CHECK ((status IN (2, 5)) = (owner IS NOT NULL AND epoch IS NOT NULL))
);
-- The last message key: taken in the transaction that inserts, so keys
-- grow in commit order (a key up to last_key() was committed) and a
-- transaction that fails uses none.
CREATE TABLE counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO counters (name, value) VALUES ('message_key', 0);
-- The claim order of Ready work: (name, position, key) per direction and port.
CREATE INDEX messages_ready ON messages (direction, port, name, position, key) WHERE status = 1;
CREATE INDEX messages_status ON messages (status, key);
CREATE INDEX messages_in_flight ON messages (direction, port, owner) WHERE owner IS NOT NULL;

-- Duplicate detection: the primary key refuses a MessageId logged twice.
CREATE TABLE message_log (
    message_id text PRIMARY KEY,
    time_ms    bigint NOT NULL,
    port       text NOT NULL
);

CREATE TABLE exceptions (
    id          bigserial PRIMARY KEY,
    time_ms     bigint NOT NULL,
    port        text NOT NULL,
    stage       text NOT NULL,
    plugin      text,
    plugin_hash text,
    message_key bigint,
    message_id  text,
    text        text NOT NULL
);

CREATE TABLE history (
    seq         bigserial PRIMARY KEY,
    message_id  text NOT NULL,
    time_ms     bigint NOT NULL,
    message_key bigint,
    port        text NOT NULL,
    stage       text NOT NULL,
    plugins     text NOT NULL,
    content     text NOT NULL
);
CREATE INDEX history_by_message_id ON history (message_id, seq);

CREATE TABLE state (
    key   text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- Hosts and their leases: the current fencing epoch of each owner and
-- when its lease ends (NULL: fenced off, it holds nothing).
CREATE TABLE owners (
    owner      text PRIMARY KEY,
    epoch      bigint NOT NULL,
    expires_ms bigint
);
CREATE SEQUENCE lease_epochs AS bigint;

-- Which host leads a task of a port (gateway receive): one at a time.
CREATE TABLE leaders (
    task  text NOT NULL,
    port  text NOT NULL,
    owner text NOT NULL,
    epoch bigint NOT NULL,
    PRIMARY KEY (task, port)
);

CREATE TABLE audit (
    id       bigserial PRIMARY KEY,
    time_ms  bigint NOT NULL,
    who      text NOT NULL,
    action   text NOT NULL,
    messages bigint[] NOT NULL,
    detail   text NOT NULL
);
CREATE INDEX audit_by_message ON audit USING gin (messages);
"#,
)];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// The schema version of a database (0: none yet).
fn version(t: &mut Transaction<'_>) -> Result<i64, QueueError> {
    let row = t
        .query_one("SELECT coalesce(max(version), 0) FROM ferry_schema", &[])
        .map_err(sql_error)?;
    Ok(row.get(0))
}

/// Creates the schema `schema` if needed and applies the migrations it
/// lacks. Returns (version found, version now).
pub(crate) fn migrate(t: &mut Transaction<'_>, schema: &str) -> Result<(i64, i64), QueueError> {
    // One host migrates at a time (the others wait, then find it done).
    t.execute(
        "SELECT pg_advisory_xact_lock(hashtext('ferry-migrate'))",
        &[],
    )
    .map_err(sql_error)?;
    t.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; \
         CREATE TABLE IF NOT EXISTS \"{schema}\".ferry_schema (\
             version bigint PRIMARY KEY, applied_ms bigint NOT NULL)"
    ))
    .map_err(sql_error)?;
    let found = version(t)?;
    if found > latest() {
        return Err(QueueError::Database(format!(
            "the gateway queue's schema \"{schema}\" has version {found}, but this Ferry \
             knows versions up to {}; run the newer Ferry that migrated it, or name another \
             schema in [queue] schema",
            latest()
        )));
    }
    for (number, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        t.batch_execute(sql).map_err(|e| {
            QueueError::Database(format!(
                "migration {number} of the gateway queue's schema \"{schema}\" failed: {}",
                super::describe(&e)
            ))
        })?;
        t.execute(
            "INSERT INTO ferry_schema (version, applied_ms) VALUES ($1, $2)",
            &[number, &(crate::queue::postgres::now_ms() as i64)],
        )
        .map_err(sql_error)?;
    }
    Ok((found, latest()))
}
