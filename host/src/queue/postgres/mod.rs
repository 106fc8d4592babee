//! [`PgQueue`]: the gateway queue in PostgreSQL, shared by several hosts
//! (AIF's AOS instances on one database).
//!
//! # How the guarantees hold across hosts
//!
//! - **Leases and fencing.** Each host is an owner with a lease in
//!   `owners`: a fencing epoch (from one sequence, so it only grows) and an
//!   expiry that its heartbeat ([`GatewayQueue::renew`]) moves on. A claim
//!   writes the owner and epoch into the message's row. A commit presents
//!   its lease and reads the owner's row `FOR KEY SHARE` first: when
//!   another host has fenced the owner off, the commit is refused whole;
//!   while a commit runs, nobody can finish fencing its owner off (the
//!   fence takes the row `FOR UPDATE`, which waits for it). The heartbeat's
//!   plain update of the expiry does not wait for commits: a host busy
//!   committing still renews its lease (with `FOR SHARE`, the overlapping
//!   commits of a busy host kept the row locked, the renewal waited behind
//!   them, and the lease ran out while the host worked).
//! - **Fencing, in two steps.** A host that finds an owner's lease expired
//!   first marks it as being fenced off (`FENCING` as its expiry), in a
//!   transaction of its own that does not wait for the owner's commits:
//!   from then on the owner's heartbeat and lease checks fail, so a host
//!   that was frozen (swapped out, stopped) and wakes cannot renew its way
//!   out. Then it takes the row `FOR UPDATE` — waiting for the commits
//!   that checked the lease before the mark — gives the owner a new epoch
//!   and returns its messages to Ready. An owner marked but not released
//!   (its fencer died between the two) still counts as expired, so the
//!   next heartbeat of any host finishes the job.
//! - **Failover.** Every heartbeat also looks for owners whose lease
//!   expired: it fences each off and returns its messages to Ready (their
//!   attempt stays counted), so the other hosts take them.
//! - **Ordered units.** Claims of a sequential port or of a port by
//!   conversation take a transaction-scoped advisory lock on (direction,
//!   port), read which units other owners hold in flight, and take Ready
//!   messages of the other units in (name, position, key) order, `LIMIT`
//!   applied after the held units are left out — one blocked unit never
//!   starves the others. Claims of free messages use `FOR UPDATE SKIP
//!   LOCKED`.
//! - **Duplicates.** The message log's primary key: a commit that logs a
//!   `MessageId` already there is refused whole.
//! - **Wake-ups.** A commit that makes work Ready sends `NOTIFY` on the
//!   schema's channel (delivered at commit); [`PgQueue::listen`] turns them
//!   into the queue's [`WorkSignal`], and polls when it cannot listen.
//!
//! Every method runs in one transaction; one that fails on a deadlock or a
//! serialization failure is run again (it applied nothing).

mod manage;
mod retention;
pub mod schema;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator as _;
use postgres::types::ToSql;
use postgres::{NoTls, Row};
use r2d2_postgres::PostgresConnectionManager;

use super::rules::{self, OperatorAction, Transition};
use super::{
    Change, ClaimRequest, Direction, Exception, ExceptionFilter, Filter, GatewayQueue,
    HistoryEntry, Lease, MessageKey, QueueError, QueuedMessage, RecoveryReport, Status,
    Transaction, UnitBy, WorkSignal,
};

type Pool = r2d2::Pool<Manager>;

/// Statements a connection keeps prepared, at most (SQL built with
/// literals is prepared each time once this many are kept).
const KEPT_STATEMENTS: usize = 256;

/// A pooled connection and the statements it has prepared: a statement is
/// parsed once per connection, later runs only bind and execute it — one
/// round trip instead of two.
pub(crate) struct Conn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl std::ops::Deref for Conn {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        &self.client
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

/// The pool's connections: `r2d2_postgres`'s, each with its statements.
struct Manager(PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.0.connect()?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

/// Where a [`Tx`] runs its statements.
enum On<'a> {
    /// One transaction of ours.
    Transaction(postgres::Transaction<'a>),
    /// Each statement on its own (a read).
    Client(&'a mut postgres::Client),
}

/// One transaction of ours, or a connection for reads, running each
/// statement prepared once per connection (the methods of
/// `postgres::Transaction` the queue uses).
pub(crate) struct Tx<'a> {
    on: On<'a>,
    statements: &'a mut HashMap<String, postgres::Statement>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// `$call` on whichever client `$tx` runs on.
macro_rules! on_client {
    ($tx:expr, |$c:ident| $call:expr) => {
        match &mut $tx.on {
            On::Transaction($c) => $call,
            On::Client($c) => $call,
        }
    };
}

impl Tx<'_> {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = on_client!(self, |c| c.prepare(sql))?;
        if self.statements.len() < KEPT_STATEMENTS {
            self.statements.insert(sql.to_string(), s.clone());
        }
        Ok(s)
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        on_client!(self, |c| c.query(&s, params))
    }

    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        on_client!(self, |c| c.query_one(&s, params))
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        on_client!(self, |c| c.query_opt(&s, params))
    }

    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        on_client!(self, |c| c.execute(&s, params))
    }

    /// Statements without parameters, as one simple query (not prepared).
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        on_client!(self, |c| c.batch_execute(sql))
    }

    /// Commits the transaction (a read has nothing to commit).
    fn commit(self) -> Result<(), postgres::Error> {
        match self.on {
            On::Transaction(t) => t.commit(),
            On::Client(_) => Ok(()),
        }
    }
}

/// Where the queue is and how a host uses it (`[queue]` with
/// `backend = "postgres"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// The connection string (`postgres://user@host:5432/db` or
    /// `host=… user=… dbname=…`).
    pub url: String,
    /// The schema holding Ferry's tables (default `ferry`): several
    /// installations can share one database.
    pub schema: String,
    /// How long a host's lease lasts without a heartbeat.
    pub lease: Duration,
    /// Connections in the pool.
    pub pool_size: u32,
}

impl PgOptions {
    /// Options for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_string(),
            lease: DEFAULT_LEASE,
            pool_size: 8,
        }
    }
}

/// The schema Ferry's tables are in unless `[queue] schema` says otherwise.
pub const DEFAULT_SCHEMA: &str = "ferry";

/// A host's lease unless `[queue] lease` says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Whether `name` can name a schema (it goes into SQL and a connection
/// option): lower-case letters, digits and `_`, starting with a letter.
pub fn valid_schema(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The gateway queue in a PostgreSQL schema, shared by any number of hosts.
pub struct PgQueue {
    pool: Pool,
    options: PgOptions,
    /// The connection settings (with the schema's search path).
    config: postgres::Config,
    lease_ms: i64,
    /// Bumped when a commit of this process makes work Ready, and by the
    /// listener when another host's does.
    signal: Arc<WorkSignal>,
    /// Bumped by the listener when another host's commit makes work Ready,
    /// and when this host takes over a dead host's work: what this process
    /// did not do itself, for the event-driven jobs.
    foreign: Arc<WorkSignal>,
    /// This queue's name in its wake-ups (`NOTIFY` payload), so the
    /// listener tells its own commits from the other hosts'.
    instance: String,
    /// Tells the listener thread to stop.
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for PgQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgQueue")
            .field("where", &self.describe_target())
            .finish()
    }
}

impl Drop for PgQueue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A name no other open queue has: process, time, and a counter.
fn instance_name() -> String {
    static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        OPENED.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A database error in a sentence (the server's message and detail).
pub(crate) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                let _ = write!(s, " ({d})");
            }
            s
        }
        None => e.to_string(),
    }
}

/// A database error as the queue's error.
pub(crate) fn sql_error(e: postgres::Error) -> QueueError {
    QueueError::Database(describe(&e))
}

fn pool_error(e: r2d2::Error) -> QueueError {
    QueueError::Database(format!("no connection to the database: {e}"))
}

fn key_i64(key: MessageKey) -> i64 {
    i64::try_from(key).unwrap_or(i64::MAX)
}

/// The columns of a message, in the order [`message`] reads them.
const COLS: &str = "key, direction, port, status, name, position, message_id, action, \
    conversation_id, batch_id, request_message_id, error, attempts, created_ms, updated_ms, \
    owner, epoch, content";

/// The columns of a message without its content.
const SUMMARY_COLS: &str = "key, direction, port, status, name, position, message_id, action, \
    conversation_id, batch_id, request_message_id, error, attempts, created_ms, updated_ms, \
    owner, epoch";

fn bad_code(what: &'static str, key: i64, code: i16) -> QueueError {
    QueueError::Corrupt {
        table: "messages",
        key: key.to_string(),
        reason: format!("unknown {what} code {code}"),
    }
}

/// A message's row (columns [`SUMMARY_COLS`], then `content` if present).
pub(crate) fn message(row: &Row) -> Result<QueuedMessage, QueueError> {
    let key: i64 = row.get(0);
    let d: i16 = row.get(1);
    let s: i16 = row.get(3);
    let direction = u8::try_from(d)
        .ok()
        .and_then(Direction::from_code)
        .ok_or_else(|| bad_code("direction", key, d))?;
    let status = u8::try_from(s)
        .ok()
        .and_then(Status::from_code)
        .ok_or_else(|| bad_code("status", key, s))?;
    let position: i32 = row.get(5);
    let attempts: i32 = row.get(12);
    let created: i64 = row.get(13);
    let updated: i64 = row.get(14);
    Ok(QueuedMessage {
        key: key as u64,
        direction,
        port: row.get(2),
        status,
        name: row.get(4),
        position: position as u32,
        message_id: row.get(6),
        action: row.get(7),
        conversation_id: row.get(8),
        batch_id: row.get(9),
        request_message_id: row.get(10),
        error: row.get(11),
        attempts: attempts as u32,
        created_ms: created as u64,
        updated_ms: updated as u64,
        content: if row.len() > 17 {
            row.get(17)
        } else {
            String::new()
        },
    })
}

/// The claim recorded in a message's row (columns 15, 16), if any.
fn claim_of(row: &Row, at: usize) -> Option<Lease> {
    let owner: Option<String> = row.get(at);
    let epoch: Option<i64> = row.get(at + 1);
    Some(Lease::new(owner?, epoch? as u64))
}

/// The equality filters of a list or a search (direction, port, status,
/// conversation): written as SQL once for both.
pub(crate) struct Equals {
    direction: Option<i16>,
    port: Option<String>,
    status: Option<i16>,
    conversation_id: Option<String>,
}

impl Equals {
    pub(crate) fn new(
        direction: Option<Direction>,
        port: &Option<String>,
        status: Option<Status>,
        conversation_id: &Option<String>,
    ) -> Equals {
        Equals {
            direction: direction.map(|d| i16::from(d.code())),
            port: port.clone(),
            status: status.map(|s| i16::from(s.code())),
            conversation_id: conversation_id.clone(),
        }
    }

    /// Appends ` AND column = $n` for each given field to `sql`, numbered
    /// after the `before` parameters already in it; returns their values.
    pub(crate) fn write(&self, sql: &mut String, before: usize) -> Vec<&(dyn ToSql + Sync)> {
        let fields: [(&str, Option<&(dyn ToSql + Sync)>); 4] = [
            ("direction", self.direction.as_ref().map(|d| d as _)),
            ("port", self.port.as_ref().map(|p| p as _)),
            ("status", self.status.as_ref().map(|s| s as _)),
            (
                "conversation_id",
                self.conversation_id.as_ref().map(|c| c as _),
            ),
        ];
        let mut values = Vec::new();
        for (column, value) in fields {
            if let Some(value) = value {
                values.push(value);
                let _ = write!(sql, " AND {column} = ${}", before + values.len());
            }
        }
        values
    }
}

/// The database's clock, in ms (leases expire by one clock for all hosts).
const DB_NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// `owners.expires_ms` of an owner being fenced off: its lease is refused
/// from then on, its messages are not back to Ready yet. Below every
/// reading of the clock, so it counts as expired. (NULL: fenced off and
/// released; the owner's next start gives it a new lease.)
const FENCING: i64 = -1;

/// Checks that `lease` is its owner's current one; the owner's row stays
/// locked (`FOR KEY SHARE`) until the transaction ends, so nobody fences
/// the owner off meanwhile ([`fence_wait`]), while its heartbeat's update
/// of the expiry (no key changed) goes on.
fn check_lease(t: &mut Tx<'_>, lease: &Lease) -> Result<(), QueueError> {
    let row = t
        .query_opt(
            "SELECT epoch, expires_ms IS NULL OR expires_ms < 0 FROM owners \
             WHERE owner = $1 FOR KEY SHARE",
            &[&lease.owner()],
        )
        .map_err(sql_error)?;
    let current = row.as_ref().map(|r| r.get::<_, i64>(0) as u64);
    let fenced = row.as_ref().is_none_or(|r| r.get::<_, bool>(1));
    if current != Some(lease.epoch()) || fenced {
        return Err(QueueError::StaleLease {
            owner: lease.owner().to_string(),
            epoch: lease.epoch(),
            current: current.filter(|_| !fenced),
        });
    }
    Ok(())
}

/// Before `owner` is fenced off (a new epoch): waits for the transactions
/// that checked its lease ([`check_lease`]) to end, so none of them
/// commits under an epoch already replaced.
fn fence_wait(t: &mut Tx<'_>, owner: &str) -> Result<(), QueueError> {
    t.query_opt(
        "SELECT 1 FROM owners WHERE owner = $1 FOR UPDATE",
        &[&owner],
    )
    .map_err(stmt_error)?;
    Ok(())
}

/// The ordered unit of a message, as SQL (its `ConversationId`, or the
/// `BatchId` of a batch member without one).
const UNIT: &str = "coalesce(conversation_id, batch_id)";

impl PgQueue {
    /// Connects to the database, creates or migrates the schema, and
    /// returns the queue.
    pub fn open(options: PgOptions) -> Result<PgQueue, QueueError> {
        if !valid_schema(&options.schema) {
            return Err(QueueError::Database(format!(
                "{:?} cannot name the gateway queue's schema: use lower-case letters, \
                 digits and _, starting with a letter",
                options.schema
            )));
        }
        let mut config = postgres::Config::from_str(&options.url).map_err(|e| {
            QueueError::Database(format!(
                "[queue] url is not a PostgreSQL connection string ({e}); write it as \
                 postgres://user@host:5432/database"
            ))
        })?;
        config
            .options(&format!("-c search_path={}", options.schema))
            .application_name("ferry");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let manager = Manager(PostgresConnectionManager::new(config.clone(), NoTls));
        let pool = r2d2::Pool::builder()
            .error_handler(Box::new(ConnectionErrors::default()))
            // No round trip to test a connection each time it is taken: a
            // closed one is seen by `has_broken`, or fails its first
            // statement and `transaction` runs again on a new one.
            .test_on_check_out(false)
            .max_size(options.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(15))
            .build(manager)
            .map_err(|e| {
                QueueError::Database(format!(
                    "cannot connect to the gateway queue's database {}: {e}; check that \
                     PostgreSQL runs there and accepts this user",
                    redact(&options.url)
                ))
            })?;
        let queue = PgQueue {
            pool,
            lease_ms: i64::try_from(options.lease.as_millis()).unwrap_or(i64::MAX),
            options,
            config,
            signal: Arc::new(WorkSignal::default()),
            foreign: Arc::new(WorkSignal::default()),
            instance: instance_name(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let schema = queue.options.schema.clone();
        let (found, now) = queue.transaction(|t| schema::migrate(t, &schema))?;
        if found != now {
            tracing::info!(
                schema = %schema,
                "gateway queue schema migrated from version {found} to {now}"
            );
        }
        Ok(queue)
    }

    /// "database … schema …", without a password, for messages.
    pub fn describe_target(&self) -> String {
        format!(
            "{} (schema {})",
            redact(&self.options.url),
            self.options.schema
        )
    }

    /// The options it was opened with.
    pub fn options(&self) -> &PgOptions {
        &self.options
    }

    fn notify_channel(&self) -> String {
        format!("ferry_work_{}", self.options.schema)
    }

    /// Runs `f` in one transaction, committed if it succeeds; run again
    /// (up to 5 times) when the database asks for it (a deadlock, a
    /// serialization failure).
    fn transaction<T>(
        &self,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let mut conn = self.pool.get().map_err(pool_error)?;
        let mut tries = 0;
        loop {
            tries += 1;
            let Conn { client, statements } = &mut *conn;
            let mut committing = false;
            let result = (|| {
                let mut t = Tx {
                    on: On::Transaction(client.transaction().map_err(sql_error)?),
                    statements,
                };
                let out = f(&mut t)?;
                committing = true;
                t.commit().map_err(classify)?;
                Ok(out)
            })();
            match result {
                Err(QueueError::Retry(_)) if tries < 5 => {
                    std::thread::sleep(Duration::from_millis(5 * tries));
                }
                Err(QueueError::Retry(reason)) => return Err(QueueError::Database(reason)),
                // A pooled connection the database closed meanwhile (it
                // restarted; connections are not tested when taken from
                // the pool): nothing was applied before the commit, so run
                // again on a new connection.
                Err(_) if !committing && tries < 5 && conn.client.is_closed() => {
                    drop(conn);
                    conn = self.pool.get().map_err(pool_error)?;
                }
                other => return other,
            }
        }
    }

    /// Reads outside a transaction of ours (one statement).
    fn read<T>(
        &self,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, postgres::Error>,
    ) -> Result<T, QueueError> {
        let mut conn = self.pool.get().map_err(pool_error)?;
        let mut tries = 0;
        loop {
            tries += 1;
            let Conn { client, statements } = &mut *conn;
            let result = f(&mut Tx {
                on: On::Client(client),
                statements,
            });
            match result {
                // A pooled connection the database closed meanwhile: read
                // again on a new one.
                Err(_) if tries < 5 && conn.client.is_closed() => {
                    drop(conn);
                    conn = self.pool.get().map_err(pool_error)?;
                }
                other => return other.map_err(sql_error),
            }
        }
    }

    /// Starts a thread that turns other hosts' wake-ups (`NOTIFY`) into
    /// this queue's [`WorkSignal`]; while it cannot listen (the database
    /// restarts), it bumps the signal every `poll` so the services look
    /// for work anyway. Stops when the queue is dropped.
    pub fn listen(&self, poll: Duration) {
        let config = self.config.clone();
        let channel = self.notify_channel();
        let signal = self.signal.clone();
        let foreign = self.foreign.clone();
        let instance = self.instance.clone();
        let stop = self.stop.clone();
        let bump = move || {
            signal.bump();
            foreign.bump();
        };
        let spawned = std::thread::Builder::new()
            .name("ferry-queue-listen".into())
            .spawn(move || {
                let mut reported = false;
                while !stop.load(Ordering::Relaxed) {
                    let mut client = match config.connect(NoTls) {
                        Ok(c) => c,
                        Err(e) => {
                            if !reported {
                                tracing::warn!(
                                    "cannot listen for the other hosts' wake-ups ({}); \
                                     looking for work every {poll:?} until the database \
                                     answers",
                                    describe(&e)
                                );
                                reported = true;
                            }
                            bump();
                            std::thread::sleep(poll);
                            continue;
                        }
                    };
                    if let Err(e) = client.batch_execute(&format!("LISTEN {channel}")) {
                        tracing::warn!("cannot listen for wake-ups: {}", describe(&e));
                        std::thread::sleep(poll);
                        continue;
                    }
                    if reported {
                        tracing::info!("listening for the other hosts' wake-ups again");
                        reported = false;
                    }
                    // Work that was made Ready while nobody listened.
                    bump();
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        // A new wait each time: a `TimeoutIter` that timed
                        // out once returns at once ever after (until a
                        // notification), which made this loop spin.
                        let next = client
                            .notifications()
                            .timeout_iter(Duration::from_secs(1))
                            .next();
                        match next {
                            // Our own commits bumped `signal` already.
                            Ok(Some(n)) if n.payload() == instance => {}
                            Ok(Some(_)) => bump(),
                            Ok(None) if client.is_closed() => break,
                            Ok(None) => {}
                            Err(_) => break,
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the wake-up listener: {e}");
        }
    }

    /// An operator action on one message, as [`rules::operator`] decides it.
    fn operator(&self, key: MessageKey, action: OperatorAction) -> Result<(), QueueError> {
        let released = self.transaction(|t| {
            let row = t
                .query_opt(
                    "SELECT status FROM messages WHERE key = $1 FOR UPDATE",
                    &[&key_i64(key)],
                )
                .map_err(sql_error)?
                .ok_or(QueueError::NotFound { key })?;
            let status = status_of(key, row.get(0))?;
            let released = apply_operator(t, key, status, action)?;
            if released {
                self.notify(t)?;
            }
            Ok(released)
        })?;
        if released {
            self.signal.bump();
        }
        Ok(())
    }

    fn notify(&self, t: &mut Tx<'_>) -> Result<(), QueueError> {
        t.execute(
            "SELECT pg_notify($1, $2)",
            &[&self.notify_channel(), &self.instance],
        )
        .map_err(sql_error)?;
        Ok(())
    }

    /// Fences off an owner whose lease expired and returns its work to
    /// Ready, in the two steps of the module's "Fencing". Returns how many
    /// messages it had in flight (None: its lease had not expired after
    /// all, it started again, or another host did it first).
    fn take_over(&self, owner: &str) -> Result<Option<RecoveryReport>, QueueError> {
        let marked = self.transaction(|t| {
            t.execute(
                &format!(
                    "UPDATE owners SET expires_ms = {FENCING} \
                     WHERE owner = $1 AND expires_ms < {DB_NOW}"
                ),
                &[&owner],
            )
            .map_err(sql_error)
        })?;
        if marked == 0 {
            return Ok(None);
        }
        let report = self.transaction(|t| {
            fence_wait(t, owner)?;
            let fenced = t
                .execute(
                    &format!(
                        "UPDATE owners SET epoch = nextval('lease_epochs'), expires_ms = NULL \
                         WHERE owner = $1 AND expires_ms = {FENCING}"
                    ),
                    &[&owner],
                )
                .map_err(sql_error)?;
            if fenced == 0 {
                return Ok(None);
            }
            let report = release_owner(t, owner)?;
            t.execute("DELETE FROM leaders WHERE owner = $1", &[&owner])
                .map_err(sql_error)?;
            if report.total() > 0 {
                self.notify(t)?;
            }
            Ok(Some(report))
        })?;
        if report.is_some_and(|r| r.total() > 0) {
            self.signal.bump();
            self.foreign.bump();
        }
        Ok(report)
    }

    /// Whether `lease` may run `task` for `port` now: one owner at a time
    /// leads it (e.g. gateway receive of a folder several hosts can see).
    /// The leader keeps it while its lease lives; once its owner is fenced
    /// off (its lease expired, or it started again), another owner takes it.
    pub fn lead(&self, lease: &Lease, task: &str, port: &str) -> Result<bool, QueueError> {
        self.transaction(|t| {
            check_lease(t, lease)?;
            let row = t
                .query_opt(
                    "INSERT INTO leaders AS l (task, port, owner, epoch) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (task, port) DO UPDATE SET owner = EXCLUDED.owner, \
                         epoch = EXCLUDED.epoch \
                     WHERE l.owner = EXCLUDED.owner OR NOT EXISTS ( \
                         SELECT 1 FROM owners o WHERE o.owner = l.owner AND o.epoch = l.epoch \
                         AND o.expires_ms >= 0) \
                     RETURNING owner",
                    &[&task, &port, &lease.owner(), &(lease.epoch() as i64)],
                )
                .map_err(sql_error)?;
            Ok(row.is_some())
        })
    }
}

/// What the pool says when a connection fails (the database restarts, the
/// network drops): one warning per burst, in the queue's words, instead of
/// a line per connection.
#[derive(Debug, Default)]
struct ConnectionErrors {
    last_ms: std::sync::atomic::AtomicU64,
}

impl r2d2::HandleError<postgres::Error> for ConnectionErrors {
    fn handle_error(&self, error: postgres::Error) {
        let now = now_ms();
        let last = self.last_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 5_000 {
            self.last_ms.store(now, Ordering::Relaxed);
            tracing::warn!(
                "PostgreSQL gateway queue: a connection to the database failed ({}); \
                 reconnecting, work goes on when it answers",
                describe(&error)
            );
        }
    }
}

/// Hides a password in a connection string.
pub fn redact(url: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        && let Some(at) = rest.find('@')
    {
        let (auth, host) = rest.split_at(at);
        let user = auth.split(':').next().unwrap_or("");
        let scheme = &url[..url.len() - rest.len()];
        return format!("{scheme}{user}{host}");
    }
    url.split_whitespace()
        .filter(|p| !p.starts_with("password="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A commit's error: a conflict to run again, or another database error.
fn classify(e: postgres::Error) -> QueueError {
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
        {
            QueueError::Retry(describe(&e))
        }
        _ => sql_error(e),
    }
}

/// [`sql_error`], or [`classify`] for statements that may conflict.
fn stmt_error(e: postgres::Error) -> QueueError {
    classify(e)
}

fn status_of(key: MessageKey, code: i16) -> Result<Status, QueueError> {
    u8::try_from(code)
        .ok()
        .and_then(Status::from_code)
        .ok_or_else(|| bad_code("status", key_i64(key), code))
}

/// Applies an operator action to a message locked in `t` whose status is
/// `status`. Returns whether it became Ready.
fn apply_operator(
    t: &mut Tx<'_>,
    key: MessageKey,
    status: Status,
    action: OperatorAction,
) -> Result<bool, QueueError> {
    apply_transition(t, key, rules::operator(action, key, status)?)
}

/// Applies a transition [`rules::operator`] decided to a locked message.
/// Returns whether it became Ready.
fn apply_transition(
    t: &mut Tx<'_>,
    key: MessageKey,
    transition: Transition,
) -> Result<bool, QueueError> {
    match transition {
        Transition::Unchanged => Ok(false),
        Transition::Remove => {
            t.execute("DELETE FROM messages WHERE key = $1", &[&key_i64(key)])
                .map_err(stmt_error)?;
            Ok(false)
        }
        Transition::To(s) => {
            t.execute(
                "UPDATE messages SET status = $2, updated_ms = $3 WHERE key = $1",
                &[&key_i64(key), &i16::from(s.code()), &(now_ms() as i64)],
            )
            .map_err(stmt_error)?;
            Ok(s == Status::Ready)
        }
    }
}

/// Returns every message `owner` holds in flight to Ready (attempt kept).
fn release_owner(t: &mut Tx<'_>, owner: &str) -> Result<RecoveryReport, QueueError> {
    let rows = t
        .query(
            "WITH r AS (SELECT key, status FROM messages WHERE owner = $1 FOR UPDATE) \
             UPDATE messages m SET status = 1, owner = NULL, epoch = NULL, updated_ms = $2 \
             FROM r WHERE m.key = r.key RETURNING r.status",
            &[&owner, &(now_ms() as i64)],
        )
        .map_err(stmt_error)?;
    let mut report = RecoveryReport::default();
    for row in rows {
        let code: i16 = row.get(0);
        if let Some(s) = u8::try_from(code).ok().and_then(Status::from_code) {
            report.count(s, 1);
        }
    }
    Ok(report)
}

/// The current status and claim of each message a transaction names,
/// locked, as the transaction goes on.
type Seen = HashMap<MessageKey, (Status, Option<Lease>)>;

fn reject(index: usize, change: &'static str, reason: QueueError) -> QueueError {
    QueueError::Rejected {
        index,
        change,
        reason: Box::new(reason),
    }
}

fn plugins_text(plugins: &[(String, String)]) -> String {
    serde_json::to_string(plugins).unwrap_or_else(|_| "[]".into())
}

fn opt_i64(v: Option<MessageKey>) -> Option<i64> {
    v.map(key_i64)
}

impl GatewayQueue for PgQueue {
    fn commit(&self, tx: Transaction) -> Result<Vec<MessageKey>, QueueError> {
        if tx.is_empty() {
            return Ok(Vec::new());
        }
        let (lease, changes) = tx.into_parts();
        // What no database needs to tell: a status only a claim gives.
        for (index, change) in changes.iter().enumerate() {
            match change {
                Change::Insert(m) => {
                    rules::settable(0, m.status).map_err(|e| reject(index, change.kind(), e))?
                }
                Change::SetStatus { key, status, .. } => {
                    rules::settable(*key, *status).map_err(|e| reject(index, change.kind(), e))?
                }
                _ => {}
            }
        }
        let named: Vec<i64> = {
            let mut v: Vec<i64> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::SetStatus { key, .. }
                    | Change::Remove { key }
                    | Change::SetContent { key, .. }
                    | Change::SetEnvelope { key, .. } => Some(key_i64(*key)),
                    _ => None,
                })
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (keys, wakes) = self.transaction(|t| {
            if let Some(lease) = &lease {
                check_lease(t, lease)?;
            }
            // The messages it names, locked in key order (no deadlock
            // between two commits), with their claims.
            let mut seen: Seen = HashMap::new();
            if !named.is_empty() {
                for row in t
                    .query(
                        "SELECT key, status, owner, epoch FROM messages WHERE key = ANY($1) \
                         ORDER BY key FOR UPDATE",
                        &[&named],
                    )
                    .map_err(stmt_error)?
                {
                    let key = row.get::<_, i64>(0) as u64;
                    seen.insert(key, (status_of(key, row.get(1))?, claim_of(&row, 2)));
                }
            }
            let now = now_ms() as i64;
            // The keys of the messages it inserts, taken at once (the
            // counter's row stays locked until the commit).
            let inserts = changes
                .iter()
                .filter(|c| matches!(c, Change::Insert(_)))
                .count() as i64;
            let mut next_key = 0;
            if inserts > 0 {
                let row = t
                    .query_one(
                        "UPDATE counters SET value = value + $1 WHERE name = 'message_key' \
                         RETURNING value",
                        &[&inserts],
                    )
                    .map_err(stmt_error)?;
                next_key = row.get::<_, i64>(0) - inserts + 1;
            }
            let mut keys: Vec<MessageKey> = Vec::new();
            let mut wakes = false;
            for (index, change) in changes.iter().enumerate() {
                let kind = change.kind();
                // The message a change names: there, and this transaction
                // may change it.
                let target = |key: MessageKey| -> Result<(), QueueError> {
                    let (_, claim) = seen
                        .get(&key)
                        .ok_or_else(|| reject(index, kind, QueueError::NotFound { key }))?;
                    rules::fence(key, claim.as_ref(), lease.as_ref())
                        .map_err(|e| reject(index, kind, e))
                };
                match change {
                    Change::Insert(m) => {
                        let key = next_key;
                        next_key += 1;
                        t.execute(
                                "INSERT INTO messages (key, direction, port, status, name, \
                                 position, message_id, action, conversation_id, batch_id, \
                                 request_message_id, content, error, attempts, created_ms, \
                                 updated_ms) VALUES ($14, $1, $2, $3, $4, \
                                 $5, $6, $7, $8, $9, $10, $11, $12, 0, $13, $13)",
                                &[
                                    &i16::from(m.direction.code()),
                                    &m.port,
                                    &i16::from(m.status.code()),
                                    &m.name,
                                    &(m.position as i32),
                                    &m.message_id,
                                    &m.action,
                                    &m.conversation_id,
                                    &m.batch_id,
                                    &m.request_message_id,
                                    &m.content,
                                    &m.error,
                                    &now,
                                    &key,
                                ],
                            )
                            .map_err(stmt_error)?;
                        let key = key as u64;
                        seen.insert(key, (m.status, None));
                        keys.push(key);
                        wakes |= m.status == Status::Ready;
                    }
                    Change::SetStatus { key, status, error } => {
                        target(*key)?;
                        t.execute(
                            "UPDATE messages SET status = $2, error = coalesce($3, error), \
                             updated_ms = $4, owner = NULL, epoch = NULL WHERE key = $1",
                            &[&key_i64(*key), &i16::from(status.code()), error, &now],
                        )
                        .map_err(stmt_error)?;
                        seen.insert(*key, (*status, None));
                        wakes |= *status == Status::Ready;
                    }
                    Change::Remove { key } => {
                        target(*key)?;
                        t.execute("DELETE FROM messages WHERE key = $1", &[&key_i64(*key)])
                            .map_err(stmt_error)?;
                        seen.remove(key);
                    }
                    Change::SetContent { key, content } => {
                        target(*key)?;
                        t.execute(
                            "UPDATE messages SET content = $2, updated_ms = $3 WHERE key = $1",
                            &[&key_i64(*key), content, &now],
                        )
                        .map_err(stmt_error)?;
                    }
                    Change::SetEnvelope {
                        key,
                        content,
                        message_id,
                        action,
                    } => {
                        target(*key)?;
                        t.execute(
                            "UPDATE messages SET content = $2, message_id = $3, action = $4, \
                             updated_ms = $5 WHERE key = $1",
                            &[&key_i64(*key), content, message_id, action, &now],
                        )
                        .map_err(stmt_error)?;
                    }
                    Change::LogProcessed { message_id, port } => {
                        let n = t
                            .execute(
                                "INSERT INTO message_log (message_id, time_ms, port) \
                                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                &[message_id, &now, port],
                            )
                            .map_err(stmt_error)?;
                        if n == 0 {
                            return Err(reject(
                                index,
                                kind,
                                QueueError::Duplicate {
                                    message_id: message_id.clone(),
                                },
                            ));
                        }
                    }
                    Change::Exception(e) | Change::InsertedException(e) => {
                        let message_key = if matches!(change, Change::InsertedException(_)) {
                            keys.last().copied()
                        } else {
                            e.message_key
                        };
                        t.execute(
                            "INSERT INTO exceptions (time_ms, port, stage, plugin, plugin_hash, \
                             message_key, message_id, text) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            &[
                                &(e.time_ms as i64),
                                &e.port,
                                &e.stage,
                                &e.plugin,
                                &e.plugin_hash,
                                &opt_i64(message_key),
                                &e.message_id,
                                &e.text,
                            ],
                        )
                        .map_err(stmt_error)?;
                    }
                    Change::History(h) => {
                        t.execute(
                            "INSERT INTO history (message_id, time_ms, message_key, port, stage, \
                             plugins, content) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            &[
                                &h.message_id,
                                &(h.time_ms as i64),
                                &opt_i64(h.message_key),
                                &h.port,
                                &h.stage,
                                &plugins_text(&h.plugins),
                                &h.content,
                            ],
                        )
                        .map_err(stmt_error)?;
                    }
                    Change::InsertedHistory(h) => {
                        let Some(&key) = keys.last() else {
                            return Err(reject(
                                index,
                                kind,
                                QueueError::storage(std::io::Error::other(
                                    "a history version of the inserted message comes before \
                                     any insert in its transaction",
                                )),
                            ));
                        };
                        // The document is copied by the server from the
                        // message just inserted: it crosses the wire once.
                        t.execute(
                            "INSERT INTO history (message_id, time_ms, message_key, port, stage, \
                             plugins, content) SELECT $1, $2, key, $3, $4, $5, content \
                             FROM messages WHERE key = $6",
                            &[
                                &h.message_id,
                                &(h.time_ms as i64),
                                &h.port,
                                &h.stage,
                                &plugins_text(&h.plugins),
                                &key_i64(key),
                            ],
                        )
                        .map_err(stmt_error)?;
                    }
                    Change::PutState { key, value } => {
                        t.execute(
                            "INSERT INTO state (key, value) VALUES ($1, $2) \
                             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                            &[key, value],
                        )
                        .map_err(stmt_error)?;
                    }
                    Change::DeleteState { key } => {
                        t.execute("DELETE FROM state WHERE key = $1", &[key])
                            .map_err(stmt_error)?;
                    }
                }
            }
            if wakes {
                self.notify(t)?;
            }
            Ok((keys, wakes))
        })?;
        if wakes {
            self.signal.bump();
        }
        Ok(keys)
    }

    fn claim(
        &self,
        lease: &Lease,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        let &ClaimRequest {
            direction,
            port,
            limit,
            max_key,
            units,
        } = request;
        let target = match direction {
            Direction::Inbound | Direction::OutboundRequest => Status::InProcess,
            Direction::Outbound => Status::InTransportProcess,
        };
        let d = i16::from(direction.code());
        let max = max_key.map_or(i64::MAX, key_i64);
        let limit_i = i64::try_from(limit).unwrap_or(i64::MAX);
        let owner = lease.owner().to_string();
        let epoch = lease.epoch() as i64;
        self.transaction(|t| {
            check_lease(t, lease)?;
            if limit == 0 {
                return Ok(Vec::new());
            }
            let mut held: Vec<String> = Vec::new();
            if units != UnitBy::Message {
                // Claims of ordered units on this port, one at a time.
                t.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1), $2)",
                    &[&port, &i32::from(d)],
                )
                .map_err(stmt_error)?;
                let others = "direction = $1 AND port = $2 AND owner IS NOT NULL \
                     AND NOT (owner = $3 AND epoch = $4)";
                if units == UnitBy::Port {
                    let busy = t
                        .query_opt(
                            &format!("SELECT 1 FROM messages WHERE {others} LIMIT 1"),
                            &[&d, &port, &owner, &epoch],
                        )
                        .map_err(stmt_error)?;
                    if busy.is_some() {
                        return Ok(Vec::new());
                    }
                } else {
                    held = t
                        .query(
                            &format!(
                                "SELECT DISTINCT {UNIT} FROM messages WHERE {others} \
                                 AND {UNIT} IS NOT NULL"
                            ),
                            &[&d, &port, &owner, &epoch],
                        )
                        .map_err(stmt_error)?
                        .iter()
                        .map(|r| r.get(0))
                        .collect();
                }
            }
            // The Ready messages to take, in claim order; messages of units
            // held by others are left out before the limit.
            let lock = if units == UnitBy::Message {
                "FOR UPDATE SKIP LOCKED"
            } else {
                "FOR UPDATE"
            };
            let rows = t
                .query(
                    &format!(
                        "SELECT key FROM messages WHERE direction = $1 AND port = $2 \
                         AND status = 1 AND key <= $3 \
                         AND ({UNIT} IS NULL OR NOT ({UNIT} = ANY($4))) \
                         ORDER BY name, position, key LIMIT $5 {lock}"
                    ),
                    &[&d, &port, &max, &held, &limit_i],
                )
                .map_err(stmt_error)?;
            let order: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            if order.is_empty() {
                return Ok(Vec::new());
            }
            let rows = t
                .query(
                    &format!(
                        "UPDATE messages SET status = $2, owner = $3, epoch = $4, \
                         attempts = attempts + 1 WHERE key = ANY($1) RETURNING {COLS}"
                    ),
                    &[&order, &i16::from(target.code()), &owner, &epoch],
                )
                .map_err(stmt_error)?;
            let mut by_key: HashMap<i64, QueuedMessage> = HashMap::with_capacity(rows.len());
            for row in &rows {
                let m = message(row)?;
                by_key.insert(key_i64(m.key), m);
            }
            Ok(order.iter().filter_map(|k| by_key.remove(k)).collect())
        })
    }

    fn ready(
        &self,
        direction: Direction,
        port: &str,
        limit: usize,
        max_key: Option<MessageKey>,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        let rows = self.read(|c| {
            c.query(
                &format!(
                    "SELECT {COLS} FROM messages WHERE direction = $1 AND port = $2 \
                     AND status = 1 AND key <= $3 ORDER BY name, position, key LIMIT $4"
                ),
                &[
                    &i16::from(direction.code()),
                    &port,
                    &max_key.map_or(i64::MAX, key_i64),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
        })?;
        rows.iter().map(message).collect()
    }

    fn renew(&self, lease: &Lease) -> Result<(), QueueError> {
        let lease_ms = self.lease_ms;
        let expired: Vec<String> = self.transaction(|t| {
            let n = t
                .execute(
                    &format!(
                        "UPDATE owners SET expires_ms = {DB_NOW} + $3 \
                         WHERE owner = $1 AND epoch = $2 AND expires_ms >= 0"
                    ),
                    &[&lease.owner(), &(lease.epoch() as i64), &lease_ms],
                )
                .map_err(stmt_error)?;
            if n == 0 {
                let current = t
                    .query_opt(
                        "SELECT epoch FROM owners WHERE owner = $1 AND expires_ms >= 0",
                        &[&lease.owner()],
                    )
                    .map_err(stmt_error)?
                    .map(|r| r.get::<_, i64>(0) as u64);
                return Err(QueueError::StaleLease {
                    owner: lease.owner().to_string(),
                    epoch: lease.epoch(),
                    current,
                });
            }
            let rows = t
                .query(
                    &format!(
                        "SELECT owner FROM owners WHERE expires_ms < {DB_NOW} AND owner <> $1"
                    ),
                    &[&lease.owner()],
                )
                .map_err(stmt_error)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        // Failover: the work of hosts whose lease expired goes back to
        // Ready for the others.
        for owner in expired {
            if let Some(report) = self.take_over(&owner)? {
                tracing::warn!(
                    host = %owner,
                    in_process = report.in_process,
                    in_transport_process = report.in_transport_process,
                    "host {owner} did not renew its lease in time: fenced off, its unfinished \
                     messages are Ready again for the other hosts"
                );
            }
        }
        Ok(())
    }

    fn work_signal(&self) -> &WorkSignal {
        &self.signal
    }

    fn foreign_work_signal(&self) -> Option<&WorkSignal> {
        Some(&self.foreign)
    }

    fn last_key(&self) -> Result<MessageKey, QueueError> {
        let row = self
            .read(|c| c.query_one("SELECT value FROM counters WHERE name = 'message_key'", &[]))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn get(&self, key: MessageKey) -> Result<Option<QueuedMessage>, QueueError> {
        let row = self.read(|c| {
            c.query_opt(
                &format!("SELECT {COLS} FROM messages WHERE key = $1"),
                &[&key_i64(key)],
            )
        })?;
        row.as_ref().map(message).transpose()
    }

    fn list(&self, filter: &Filter) -> Result<Vec<QueuedMessage>, QueueError> {
        let mut sql = format!("SELECT {COLS} FROM messages WHERE true");
        let limit = filter
            .limit
            .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let equals = Equals::new(
            filter.direction,
            &filter.port,
            filter.status,
            &filter.conversation_id,
        );
        let mut params = equals.write(&mut sql, 0);
        params.push(&limit);
        let _ = write!(sql, " ORDER BY key LIMIT ${}", params.len());
        let rows = self.read(|c| c.query(&sql, &params))?;
        rows.iter().map(message).collect()
    }

    fn counts(&self) -> Result<Vec<(Direction, String, Status, u64)>, QueueError> {
        let rows = self.read(|c| {
            c.query(
                "SELECT direction, port, status, count(*) FROM messages \
                 GROUP BY direction, port, status",
                &[],
            )
        })?;
        let mut all = BTreeMap::new();
        for row in rows {
            let (d, s): (i16, i16) = (row.get(0), row.get(2));
            let direction = u8::try_from(d)
                .ok()
                .and_then(Direction::from_code)
                .ok_or_else(|| bad_code("direction", 0, d))?;
            let status = status_of(0, s)?;
            all.insert(
                (direction, row.get::<_, String>(1), status),
                row.get::<_, i64>(3) as u64,
            );
        }
        Ok(all.into_iter().map(|((d, p, s), n)| (d, p, s, n)).collect())
    }

    fn is_processed(&self, message_id: &str) -> Result<bool, QueueError> {
        let row = self.read(|c| {
            c.query_opt(
                "SELECT 1 FROM message_log WHERE message_id = $1",
                &[&message_id],
            )
        })?;
        Ok(row.is_some())
    }

    fn are_processed(&self, message_ids: &[&str]) -> Result<Vec<bool>, QueueError> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.read(|c| {
            c.query(
                "SELECT message_id FROM message_log WHERE message_id = ANY($1)",
                &[&message_ids],
            )
        })?;
        let found: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(message_ids.iter().map(|id| found.contains(*id)).collect())
    }

    fn exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<Exception>, QueueError> {
        let limit = filter
            .limit
            .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let rows = self.read(|c| {
            c.query(
                "SELECT id, time_ms, port, stage, plugin, plugin_hash, message_key, message_id, \
                 text FROM exceptions WHERE ($1::text IS NULL OR port = $1) \
                 AND ($2::text IS NULL OR message_id = $2) \
                 AND ($3::bigint IS NULL OR message_key = $3) \
                 ORDER BY id DESC LIMIT $4",
                &[
                    &filter.port,
                    &filter.message_id,
                    &opt_i64(filter.message_key),
                    &limit,
                ],
            )
        })?;
        let mut out: Vec<Exception> = rows
            .iter()
            .map(|r| Exception {
                id: r.get::<_, i64>(0) as u64,
                time_ms: r.get::<_, i64>(1) as u64,
                port: r.get(2),
                stage: r.get(3),
                plugin: r.get(4),
                plugin_hash: r.get(5),
                message_key: r.get::<_, Option<i64>>(6).map(|k| k as u64),
                message_id: r.get(7),
                text: r.get(8),
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    fn history(&self, message_id: &str) -> Result<Vec<HistoryEntry>, QueueError> {
        let rows = self.read(|c| {
            c.query(
                "SELECT time_ms, message_key, port, stage, plugins, content FROM history \
                 WHERE message_id = $1 ORDER BY seq",
                &[&message_id],
            )
        })?;
        rows.iter()
            .map(|r| {
                let plugins: String = r.get(4);
                Ok(HistoryEntry {
                    time_ms: r.get::<_, i64>(0) as u64,
                    message_id: message_id.to_string(),
                    message_key: r.get::<_, Option<i64>>(1).map(|k| k as u64),
                    port: r.get(2),
                    stage: r.get(3),
                    plugins: serde_json::from_str(&plugins).map_err(|e| QueueError::Corrupt {
                        table: "history",
                        key: message_id.to_string(),
                        reason: format!("plugins: {e}"),
                    })?,
                    content: r.get(5),
                })
            })
            .collect()
    }

    fn recover(&self, owner: &str) -> Result<(Lease, RecoveryReport), QueueError> {
        let lease_ms = self.lease_ms;
        let (lease, report) = self.transaction(|t| {
            // A new epoch first: this waits for commits under the old
            // lease that are running, and refuses the ones that come later.
            fence_wait(t, owner)?;
            let row = t
                .query_one(
                    &format!(
                        "INSERT INTO owners (owner, epoch, expires_ms) \
                         VALUES ($1, nextval('lease_epochs'), {DB_NOW} + $2) \
                         ON CONFLICT (owner) DO UPDATE SET epoch = EXCLUDED.epoch, \
                         expires_ms = EXCLUDED.expires_ms RETURNING epoch"
                    ),
                    &[&owner, &lease_ms],
                )
                .map_err(stmt_error)?;
            let epoch = row.get::<_, i64>(0) as u64;
            let report = release_owner(t, owner)?;
            t.execute("DELETE FROM leaders WHERE owner = $1", &[&owner])
                .map_err(stmt_error)?;
            if report.total() > 0 {
                self.notify(t)?;
            }
            Ok((Lease::new(owner, epoch), report))
        })?;
        if report.total() > 0 {
            self.signal.bump();
        }
        Ok((lease, report))
    }

    fn hold(&self, key: MessageKey) -> Result<(), QueueError> {
        self.operator(key, OperatorAction::Hold)
    }

    fn release(&self, key: MessageKey) -> Result<(), QueueError> {
        self.operator(key, OperatorAction::Release)
    }

    fn delete(&self, key: MessageKey) -> Result<(), QueueError> {
        self.operator(key, OperatorAction::Delete)
    }

    fn put_state(&self, key: &str, value: &[u8]) -> Result<(), QueueError> {
        self.read(|c| {
            c.execute(
                "INSERT INTO state (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &value],
            )
        })
        .map(|_| ())
    }

    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, QueueError> {
        let row = self.read(|c| c.query_opt("SELECT value FROM state WHERE key = $1", &[&key]))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn delete_state(&self, key: &str) -> Result<bool, QueueError> {
        let n = self.read(|c| c.execute("DELETE FROM state WHERE key = $1", &[&key]))?;
        Ok(n > 0)
    }

    fn state_keys(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, QueueError> {
        let rows = self.read(|c| {
            c.query(
                "SELECT key, value FROM state WHERE starts_with(key, $1) ORDER BY key",
                &[&prefix],
            )
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn lead(&self, lease: &Lease, task: &str, port: &str) -> Result<bool, QueueError> {
        PgQueue::lead(self, lease, task, port)
    }
}
