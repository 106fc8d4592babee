//! `ferry-bench hosts`: several `ferry run --once` hosts on one PostgreSQL
//! gateway queue, beside one host on the embedded redb queue, in the same
//! run.
//!
//! Each case: the orders are written into one inbox; one host receives them
//! all (not measured: `ferry run --once` with a receive-only job); then the
//! measured part — N hosts start at once, each runs one occurrence of
//! inbound processing, outbound processing and send, and exits when no
//! work is left. Measured: wall time from the first spawn to the last exit,
//! the hosts' CPU (`wait4`), the database server's CPU (its processes'
//! `/proc` times, exited backends through the postmaster's children
//! times), and the database's transactions (`pg_stat_database`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use serde::Serialize;

use crate::orders;
use crate::pipeline::{self, Mode};

/// One case's figures.
#[derive(Debug, Clone, Serialize)]
pub struct HostsResult {
    /// `redb` or `postgres`.
    pub queue: String,
    /// Hosts.
    pub hosts: usize,
    /// Orders answered.
    pub messages: usize,
    /// Seconds from the first spawn to the last exit.
    pub seconds: f64,
    /// Orders per second.
    pub msg_per_s: f64,
    /// The hosts' CPU per order, µs.
    pub host_cpu_us: f64,
    /// The database server's CPU per order, µs (0 for redb).
    pub db_cpu_us: f64,
    /// Database transactions per order (0 for redb).
    pub db_xacts: f64,
    /// Rows written (inserted, updated, deleted) per order (0 for redb).
    pub db_rows_written: f64,
    /// Table scans (index and sequential) per order: about the statements
    /// that read or changed rows (0 for redb).
    pub db_scans: f64,
}

/// The case's options.
pub struct Options<'a> {
    pub ferry: &'a Path,
    pub base: &'a Path,
    pub url: &'a str,
    pub messages: usize,
    pub size: usize,
    pub seed: u64,
}

/// Clock ticks per second of /proc times.
fn ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// CPU seconds of the PostgreSQL server: every `postgres` process's own
/// time, plus the time of its exited children (the backends of closed
/// connections) as the postmaster counts it.
fn db_cpu() -> f64 {
    let mut total = 0u64;
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0.0;
    };
    for e in dir.flatten() {
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        total += n(11) + n(12) + n(13) + n(14);
    }
    total as f64 / ticks()
}

fn db_xacts(url: &str) -> Result<i64> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)
        .with_context(|| format!("cannot connect to {url}"))?;
    let row = c.query_one(
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database \
         WHERE datname = current_database()",
        &[],
    )?;
    Ok(row.get(0))
}

/// (rows written, scans) of the tables of `schema` so far.
fn db_tables(url: &str, schema: &str) -> Result<(i64, i64)> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)
        .with_context(|| format!("cannot connect to {url}"))?;
    let row = c.query_one(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint, \
                coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint \
         FROM pg_stat_user_tables WHERE schemaname = $1",
        &[&schema],
    )?;
    Ok((row.get(0), row.get(1)))
}

/// The `[queue]` section of a case: the redb default, or `schema` in the
/// database at `url`.
pub fn queue_section(postgres: bool, url: &str, schema: &str) -> String {
    if postgres {
        format!("[queue]\nbackend = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"")
    } else {
        "[queue]".to_string()
    }
}

/// `ferry check` of a case's configuration (compiles its plugins into the
/// data directory's cache, so the measured runs do not).
pub fn check(ferry: &Path, config: &Path) -> Result<()> {
    let status = Command::new(ferry)
        .args(["check", "--log-level", "warn", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "ferry check {} failed", config.display());
    Ok(())
}

pub fn drop_schema(url: &str, schema: &str) {
    if let Ok(mut c) = postgres::Client::connect(url, postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    }
}

/// A host's configuration: the benchmark's pipeline on the shared folders,
/// the queue, and a job of `tasks`.
fn config(case: &Path, host: usize, queue: &str, tasks: &str, name: &str) -> Result<PathBuf> {
    let dir = case.join(format!("host-{host}"));
    fs::create_dir_all(&dir)?;
    // The benchmark's configuration as `run` writes it, then adapted.
    let template = dir.join("template");
    fs::create_dir_all(&template)?;
    let path = pipeline::write_config(
        &template,
        &ferry_tests::plugins_dir(),
        Mode::Parallel,
        256,
        None,
        "original",
    )?;
    let toml = fs::read_to_string(&path)?
        .replace(
            "address = \"inbox\"",
            &format!("address = \"{}/inbox\"", case.display()),
        )
        .replace(
            "response_address = \"outbox\"",
            &format!("response_address = \"{}/outbox\"", case.display()),
        );
    let toml = format!(
        "{toml}\n{queue}\nhost_id = \"host-{host}\"\n\n[console]\nlisten = \"\"\n\n\
         [jobs.bench]\nevery = \"1h\"\ntasks = [{tasks}]\n"
    );
    let out = dir.join(name);
    fs::write(&out, toml)?;
    Ok(out)
}

fn run_once(ferry: &Path, config: &Path) -> Result<()> {
    let status = Command::new(ferry)
        .args(["run", "--once", "--log-level", "warn", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .status()?;
    ensure!(
        status.success(),
        "ferry run --once {} failed",
        config.display()
    );
    Ok(())
}

/// Runs one case: `hosts` hosts on `postgres` (or one on redb).
pub fn case(o: &Options<'_>, postgres: bool, hosts: usize, round: usize) -> Result<HostsResult> {
    let name = if postgres { "postgres" } else { "redb" };
    let case = o
        .base
        .join(format!("ferry-bench-hosts-{name}-{hosts}-{round}"));
    let _ = fs::remove_dir_all(&case);
    fs::create_dir_all(&case)?;
    let schema = format!("ferry_bench_{}_{hosts}_{round}", std::process::id());
    let queue = queue_section(postgres, o.url, &schema);
    let files = orders::files(&orders::Spec {
        messages: o.messages,
        size: o.size,
        seed: o.seed,
        conversations: 0,
        batch: 1,
    });
    let inbox = case.join("inbox");
    fs::create_dir_all(&inbox)?;
    for (n, bytes) in &files {
        fs::write(inbox.join(n), bytes)?;
    }
    // Not measured: the plugins compiled (each host's cache), the orders
    // received by host 0.
    let work = "{ service = \"inbound-processing\" }, { service = \"outbound-processing\" }, \
                { service = \"gateway-send\" }";
    let mut configs = Vec::new();
    for h in 0..hosts {
        let c = config(&case, h, &queue, work, "ferry.toml")?;
        check(o.ferry, &c)?;
        configs.push(c);
    }
    let receive = config(
        &case,
        0,
        &queue,
        "{ service = \"gateway-receive\" }",
        "receive.toml",
    )?;
    run_once(o.ferry, &receive)?;
    let cpu0 = db_cpu();
    let x0 = if postgres { db_xacts(o.url)? } else { 0 };
    let tables0 = if postgres {
        db_tables(o.url, &schema)?
    } else {
        (0, 0)
    };
    let t = Instant::now();
    let children: Vec<_> = configs
        .iter()
        .map(|c| {
            Command::new(o.ferry)
                .args(["run", "--once", "--log-level", "warn", "--config"])
                .arg(c)
                .stdin(Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut host_cpu = 0.0;
    for child in children {
        let mut status = 0;
        // SAFETY: plain data filled in by wait4 for our own child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = child.id() as libc::pid_t;
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        ensure!(r == pid, "wait4: {}", std::io::Error::last_os_error());
        ensure!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "a host failed (wait status {status})"
        );
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        host_cpu += secs(ru.ru_utime) + secs(ru.ru_stime);
    }
    let seconds = t.elapsed().as_secs_f64();
    let db = if postgres { db_cpu() - cpu0 } else { 0.0 };
    let xacts = if postgres { db_xacts(o.url)? - x0 } else { 0 };
    let tables = if postgres {
        // The hosts' backends report their counts when they end.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let (w, s) = db_tables(o.url, &schema)?;
        (w - tables0.0, s - tables0.1)
    } else {
        (0, 0)
    };
    let answered = fs::read_dir(case.join("outbox")).map_or(0, |d| d.count());
    ensure!(
        answered == o.messages,
        "{answered} of {} orders answered ({})",
        o.messages,
        case.display()
    );
    if postgres {
        drop_schema(o.url, &schema);
    }
    let _ = fs::remove_dir_all(&case);
    let n = o.messages as f64;
    Ok(HostsResult {
        queue: name.to_string(),
        hosts,
        messages: o.messages,
        seconds,
        msg_per_s: n / seconds,
        host_cpu_us: host_cpu / n * 1e6,
        db_cpu_us: db / n * 1e6,
        db_xacts: xacts as f64 / n,
        db_rows_written: tables.0 as f64 / n,
        db_scans: tables.1 as f64 / n,
    })
}
