//! `ferry-bench`: Ferry's end-to-end throughput against a native ceiling
//! measured in the same run, and how the cost grows with the backlog. See
//! BENCHMARKS.md for the method and the figures.
//!
//! Every measured run is a child process (this binary again, with a hidden
//! subcommand), so its peak RSS is its own; runs of the different cases are
//! interleaved (A B C A B C ...), so a slow moment of the machine hits all
//! cases alike.

mod hosts;
mod native;
mod orders;
mod pipeline;
mod search;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use pipeline::{FerryResult, Mode};

/// Ferry's benchmarks: end-to-end throughput vs a native ceiling, and scale.
#[derive(Parser)]
#[command(name = "ferry-bench", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// End-to-end throughput of each mode vs the native ceiling (the default).
    Run(RunArgs),
    /// Throughput and RSS with 10k, 100k, 1M messages already queued.
    Scale(ScaleArgs),
    /// Several hosts on one PostgreSQL gateway queue beside one host on
    /// redb: msg/s, the hosts' and the database's CPU per message.
    Hosts(HostsArgs),
    /// The queue manager at a million queued messages, through the
    /// running host's control API: each search's pages, on redb and on
    /// PostgreSQL.
    Search(SearchArgs),
    /// `run --smoke` then `scale --smoke`: everything at a tiny size, no
    /// timing checked (CI).
    Smoke {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write one case's inputs and configuration into DIR and stop, to
    /// profile a run: `perf record -g ferry-bench child-ferry --config DIR/ferry.toml`
    /// or `ferry-bench child-native --inbox DIR/inbox --outbox DIR/outbox --threads 1`.
    Prepare {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "parallel")]
        mode: Mode,
        #[arg(long, short = 'n', default_value_t = 20_000)]
        messages: usize,
        #[arg(long, default_value_t = 2048)]
        size: usize,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 256)]
        group_commit: usize,
        #[arg(long, default_value = "original")]
        logging: String,
    },
    /// Run Ferry once over a prepared folder (prints JSON).
    ChildFerry {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Run the native ceiling once over an inbox (prints JSON).
    ChildNative {
        #[arg(long)]
        inbox: PathBuf,
        #[arg(long)]
        outbox: PathBuf,
        #[arg(long)]
        threads: usize,
    },
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Messages per run.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    messages: usize,
    /// Size of one message in bytes (the whole envelope, about).
    #[arg(long, default_value_t = 2048)]
    size: usize,
    /// Seed of the generated orders.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Runs of each case; figures are the median with min-max.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Ferry modes to run.
    #[arg(long, value_delimiter = ',', default_values = ["parallel", "sequential", "conversations"])]
    modes: Vec<Mode>,
    /// Conversations in the `conversations` mode.
    #[arg(long, default_value_t = 64)]
    conversations: usize,
    /// Messages per batch file (1 = one message per file).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Where inbox, outbox and data go (default: /dev/shm, a tmpfs, if
    /// there is one). Give a folder on the real disk to include the disk.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Threads of the multi-threaded native ceiling (default: cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Ferry's `workers` (default: Ferry's default, one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Ferry's `group_commit`.
    #[arg(long, default_value_t = 256)]
    group_commit: usize,
    /// The port's `logging` mode (history): original, all, header, off.
    #[arg(long, default_value = "original")]
    logging: String,
    /// Tiny sizes, one run: checks that everything works, not how fast.
    #[arg(long)]
    smoke: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Skip the cases that run the real `ferry run --once` binary as a
    /// whole process (they need `ferry` built beside `ferry-bench`).
    #[arg(long)]
    no_binary: bool,
    /// The `ferry` binaries of those cases (default: the one beside
    /// `ferry-bench`); give several to compare builds in the same run, e.g.
    /// `--binary /tmp/ferry-before --binary target/release/ferry`.
    #[arg(long = "binary")]
    binaries: Vec<PathBuf>,
}

#[derive(Args, Clone)]
struct ScaleArgs {
    /// Backlogs: messages already queued when a run starts.
    #[arg(long, value_delimiter = ',', default_values = ["10000", "100000", "1000000"])]
    backlogs: Vec<u64>,
    /// Messages processed (inbound, outbound, send) per run.
    #[arg(long, default_value_t = 10_000)]
    measure: u64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value_t = 2048)]
    size: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, default_value_t = 256)]
    group_commit: usize,
    #[arg(long, default_value = "original")]
    logging: String,
    #[arg(long)]
    smoke: bool,
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct HostsArgs {
    /// Orders per case.
    #[arg(long, short = 'n', default_value_t = 5_000)]
    messages: usize,
    /// Host counts on PostgreSQL.
    #[arg(long, value_delimiter = ',', default_values = ["1", "2", "3"])]
    hosts: Vec<usize>,
    /// Rounds (cases interleaved); figures are medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value_t = 2048)]
    size: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The database (default: FERRY_TEST_POSTGRES_URL, or 127.0.0.1:5432).
    #[arg(long)]
    url: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct SearchArgs {
    /// Messages queued.
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    messages: u64,
    /// Size of one message in bytes (about).
    #[arg(long, default_value_t = 2048)]
    size: usize,
    /// Times each search is asked; figures are medians.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Backends: redb, postgres.
    #[arg(long, value_delimiter = ',', default_values = ["redb", "postgres"])]
    queues: Vec<String>,
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The database (default: FERRY_TEST_POSTGRES_URL, or 127.0.0.1:5432).
    #[arg(long)]
    url: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct NativeResult {
    messages: u64,
    seconds: f64,
    peak_rss_mb: f64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => run(cli.run),
        Some(Cmd::Run(a)) => run(a),
        Some(Cmd::Scale(a)) => scale(a),
        Some(Cmd::Hosts(a)) => hosts_cmd(a),
        Some(Cmd::Search(a)) => search_cmd(a),
        Some(Cmd::Smoke { dir }) => {
            let mut r = Cli::parse_from(["ferry-bench"]).run;
            r.smoke = true;
            r.dir = dir.clone();
            run(r)?;
            search_cmd(SearchArgs {
                messages: 3_000,
                size: 512,
                reps: 1,
                queues: vec!["redb".into()],
                dir: dir.clone(),
                url: None,
                json: None,
            })?;
            scale(ScaleArgs {
                backlogs: vec![],
                measure: 0,
                runs: 1,
                size: 2048,
                seed: 1,
                dir,
                group_commit: 256,
                logging: "original".into(),
                smoke: true,
                json: None,
            })
        }
        Some(Cmd::Prepare {
            dir,
            mode,
            messages,
            size,
            batch,
            group_commit,
            logging,
        }) => {
            let files = orders::files(&orders::Spec {
                messages,
                size,
                seed: 1,
                conversations: if mode == Mode::Conversations { 64 } else { 0 },
                batch,
            });
            write_inputs(&dir.join("inbox"), &files)?;
            let config = pipeline::write_config(
                &dir,
                &ferry_tests::plugins_dir(),
                mode,
                group_commit,
                None,
                &logging,
            )?;
            println!("{}", config.display());
            Ok(())
        }
        Some(Cmd::ChildFerry { config, limit }) => {
            // As `ferry run --log-level warn`: plugins' info records are
            // filtered out, warnings still reach stderr.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
                .with_writer(std::io::stderr)
                .try_init();
            let r = pipeline::run_ferry(&config, limit)?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Some(Cmd::ChildNative {
            inbox,
            outbox,
            threads,
        }) => {
            let t = Instant::now();
            let messages = native::run(&inbox, &outbox, threads)? as u64;
            let r = NativeResult {
                messages,
                seconds: t.elapsed().as_secs_f64(),
                peak_rss_mb: pipeline::peak_rss_mb(),
            };
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
    }
}

/// What a child process cost, from `wait4`: its own CPU time and peak RSS
/// (not its children's, not this process's).
#[derive(Clone, Copy, Debug, Default, Serialize)]
struct Usage {
    /// Wall time from spawn to exit, seconds.
    wall: f64,
    /// User CPU, seconds.
    user: f64,
    /// System CPU, seconds.
    system: f64,
    /// Peak RSS, MiB.
    peak_rss_mb: f64,
}

/// Run `cmd` (stdout captured, stderr inherited) and wait for it with
/// `wait4`: its stdout and what it cost. Fails when it does not exit 0.
fn measured(mut cmd: Command) -> Result<(String, Usage)> {
    use std::io::Read as _;
    let what = format!("{cmd:?}");
    let t = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)?;
    let mut status = 0;
    // SAFETY: rusage is plain data, filled in by wait4; the pid is our
    // child's, not waited for by anything else (`child` is not used after).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t.elapsed().as_secs_f64();
    ensure!(
        r == pid,
        "wait4 on {what}: {}",
        std::io::Error::last_os_error()
    );
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what} failed (wait status {status})"
    );
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((
        stdout,
        Usage {
            wall,
            user: secs(ru.ru_utime),
            system: secs(ru.ru_stime),
            peak_rss_mb: ru.ru_maxrss as f64 / 1024.0,
        },
    ))
}

/// Run this binary with `args`; parse the JSON line it prints, with what
/// the child cost.
fn child<T: for<'de> Deserialize<'de>>(args: &[&str]) -> Result<(T, Usage)> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(&exe);
    cmd.args(args);
    let (text, usage) = measured(cmd)?;
    let line = text.lines().last().unwrap_or("");
    let parsed = serde_json::from_str(line).with_context(|| format!("child printed {text:?}"))?;
    Ok((parsed, usage))
}

/// The `ferry` binary built beside this one (`cargo build --release --bins`
/// builds both).
fn ferry_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let ferry = exe.with_file_name("ferry");
    ensure!(
        ferry.is_file(),
        "{} is missing: the binary cases run the real `ferry run --once`; build it beside \
         ferry-bench (`cargo build --release --bins`), or pass --no-binary",
        ferry.display()
    );
    Ok(ferry)
}

/// `ferry run --once --config CONFIG` as users run it, as a whole process,
/// after `ferry check` has compiled the plugins into the data directory's
/// cache (so the figures hold no compiling, like the in-library runs').
fn run_binary(ferry: &Path, config: &Path) -> Result<Usage> {
    let mut check = Command::new(ferry);
    check
        .args(["check", "--log-level", "warn", "--config"])
        .arg(config);
    measured(check)?;
    let mut run = Command::new(ferry);
    run.args(["run", "--once", "--log-level", "warn", "--config"])
        .arg(config);
    Ok(measured(run)?.1)
}

/// The base folder: `--dir`, or /dev/shm, or the temporary folder.
fn base_dir(dir: &Option<PathBuf>) -> Result<PathBuf> {
    let base = match dir {
        Some(d) => d.clone(),
        None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    };
    let d = base.join(format!("ferry-bench-{}", std::process::id()));
    fs::create_dir_all(&d)?;
    Ok(d.canonicalize()?)
}

/// File system type of the mount holding `path` (from /proc/mounts).
fn fs_type(path: &Path) -> String {
    let Ok(mounts) = fs::read_to_string("/proc/mounts") else {
        return "?".into();
    };
    let mut best = ("?".to_string(), 0);
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 2 && path.starts_with(f[1]) && f[1].len() >= best.1 {
            best = (format!("{} ({})", f[2], f[0]), f[1].len());
        }
    }
    best.0
}

fn machine(dir: &Path) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "machine: {cores} cores, {cpu}; folder {} on {}",
        dir.display(),
        fs_type(dir)
    )
}

/// Write the input files into `inbox` and sync them to the disk.
fn write_inputs(inbox: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    fs::create_dir_all(inbox)?;
    for (name, bytes) in files {
        fs::write(inbox.join(name), bytes)?;
    }
    let _ = Command::new("sync").status();
    Ok(())
}

/// RequestMessageId -> SalesId of every response in `outbox`.
fn answers(outbox: &Path) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for e in fs::read_dir(outbox)? {
        let path = e?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let text = fs::read_to_string(&path)?;
        let env = match ferry::envelope::parse(&text)? {
            ferry::envelope::Parsed::Single(e) => e,
            _ => bail!("{} is a batch", path.display()),
        };
        let value = env
            .body
            .split_once("<Value>")
            .and_then(|(_, r)| r.split_once("</Value>"))
            .map(|(v, _)| v.to_string())
            .with_context(|| format!("{}: no SalesId in {}", path.display(), env.body))?;
        let request = env
            .header
            .request_message_id
            .with_context(|| format!("{}: no RequestMessageId", path.display()))?;
        ensure!(
            env.header.company.as_deref() == Some(orders::COMPANY),
            "{}: Company is {:?}",
            path.display(),
            env.header.company
        );
        out.insert(request, value);
    }
    Ok(out)
}

/// Median, min, max.
fn stats(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (median, v[0], v[v.len() - 1])
}

fn fmt_stat(values: &[f64], digits: usize) -> String {
    let (m, lo, hi) = stats(values);
    if values.len() > 1 {
        format!("{m:.digits$} ({lo:.digits$}–{hi:.digits$})")
    } else {
        format!("{m:.digits$}")
    }
}

#[derive(Clone, Debug, Serialize)]
struct CaseResult {
    case: String,
    msgs_per_s: Vec<f64>,
    peak_rss_mb: Vec<f64>,
    /// The child process's CPU per message, µs.
    cpu_user_us: Vec<f64>,
    cpu_system_us: Vec<f64>,
    ferry: Vec<FerryResult>,
}

/// One case of `run`.
#[derive(Clone, Copy, Debug)]
enum Case {
    /// The native ceiling with N threads.
    Native(usize),
    /// The four services through the library (`child-ferry`), start-up
    /// not timed.
    Library(Mode),
    /// The real `ferry run --once` binary (the Nth of `--binary`), a whole
    /// process, timed from spawn to exit (plugins already compiled into its
    /// cache).
    Binary(Mode, usize),
}

impl Case {
    fn name(&self) -> String {
        match self {
            Case::Native(1) => "native 1 thread".into(),
            Case::Native(t) => format!("native {t} threads"),
            Case::Library(m) => format!("ferry {m:?}").to_lowercase(),
            Case::Binary(m, _) => format!("ferry run --once {m:?}").to_lowercase(),
        }
    }

    fn mode(&self) -> Option<Mode> {
        match self {
            Case::Native(_) => None,
            Case::Library(m) | Case::Binary(m, _) => Some(*m),
        }
    }
}

fn run(mut a: RunArgs) -> Result<()> {
    if a.smoke {
        a.messages = 200;
        a.runs = 1;
    }
    let base = base_dir(&a.dir)?;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    println!("{}", machine(&base));
    println!(
        "workload: {} messages of ~{} B, seed {}, batch files of {}, {} run(s) per case, group_commit {}, logging {}",
        a.messages, a.size, a.seed, a.batch, a.runs, a.group_commit, a.logging
    );
    let plugin_dir = ferry_tests::plugins_dir();
    let spec = |conversations| orders::Spec {
        messages: a.messages,
        size: a.size,
        seed: a.seed,
        conversations,
        batch: a.batch,
    };
    let plain = orders::files(&spec(0));
    let with_conv = orders::files(&spec(a.conversations));
    let bytes: usize = plain.iter().map(|(_, b)| b.len()).sum();
    println!(
        "inputs: {} files, {:.1} MB, {:.0} B per message",
        plain.len(),
        bytes as f64 / 1e6,
        bytes as f64 / a.messages as f64
    );

    let binaries: Vec<PathBuf> = match (a.no_binary, a.binaries.is_empty()) {
        (true, _) => vec![],
        (false, true) => vec![ferry_binary()?],
        (false, false) => a.binaries.clone(),
    };
    let mut kinds: Vec<Case> = vec![Case::Native(1), Case::Native(threads)];
    kinds.extend(a.modes.iter().map(|&m| Case::Library(m)));
    for b in 0..binaries.len() {
        kinds.extend(a.modes.iter().map(|&m| Case::Binary(m, b)));
    }
    let cases: Vec<String> = kinds
        .iter()
        .map(|k| match k {
            Case::Binary(m, b) if binaries.len() > 1 => {
                format!("{} run --once {m:?}", binaries[*b].display()).to_lowercase()
            }
            k => k.name(),
        })
        .collect();
    let mut results: Vec<CaseResult> = cases
        .iter()
        .map(|c| CaseResult {
            case: c.clone(),
            msgs_per_s: vec![],
            peak_rss_mb: vec![],
            cpu_user_us: vec![],
            cpu_system_us: vec![],
            ferry: vec![],
        })
        .collect();
    let mut reference: Option<HashMap<String, String>> = None;
    for r in 0..a.runs {
        for (ci, case) in cases.iter().enumerate() {
            let dir = base.join(format!("run{r}-{ci}"));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir)?;
            let (inbox, outbox) = (dir.join("inbox"), dir.join("outbox"));
            let kind = kinds[ci];
            write_inputs(
                &inbox,
                if kind.mode() == Some(Mode::Conversations) {
                    &with_conv
                } else {
                    &plain
                },
            )?;
            let config = match kind.mode() {
                Some(m) => Some(pipeline::write_config(
                    &dir,
                    &plugin_dir,
                    m,
                    a.group_commit,
                    a.workers,
                    &a.logging,
                )?),
                None => None,
            };
            let config = config.as_deref().map(Path::to_string_lossy);
            let usage = match kind {
                Case::Native(t) => {
                    let (n, usage): (NativeResult, Usage) = child(&[
                        "child-native",
                        "--inbox",
                        &inbox.to_string_lossy(),
                        "--outbox",
                        &outbox.to_string_lossy(),
                        "--threads",
                        &t.to_string(),
                    ])?;
                    ensure!(
                        n.messages as usize == a.messages,
                        "{case}: {} messages done",
                        n.messages
                    );
                    Usage {
                        wall: n.seconds,
                        ..usage
                    }
                }
                Case::Library(_) => {
                    let config = config.as_deref().expect("a Ferry case has a configuration");
                    let (f, usage): (FerryResult, Usage) =
                        child(&["child-ferry", "--config", config])?;
                    ensure!(
                        f.messages as usize == a.messages && f.failed == 0,
                        "{case}: {} messages sent, {} failed",
                        f.messages,
                        f.failed
                    );
                    // Throughput and CPU over the timed part: start-up,
                    // which compiles the plugins, is not timed.
                    let timed = Usage {
                        wall: f.seconds,
                        user: f.cpu_user_s,
                        system: f.cpu_system_s,
                        ..usage
                    };
                    results[ci].ferry.push(f);
                    timed
                }
                Case::Binary(_, b) => {
                    let config = config.as_deref().expect("a Ferry case has a configuration");
                    let usage = run_binary(&binaries[b], Path::new(config))?;
                    let left = fs::read_dir(&inbox)?.count();
                    ensure!(left == 0, "{case}: {left} files left in the inbox");
                    usage
                }
            };
            let rate = a.messages as f64 / usage.wall;
            let rss = usage.peak_rss_mb;
            // The same answers from every case: same transformations.
            if r == 0 {
                let got = answers(&outbox)?;
                ensure!(got.len() == a.messages, "{case}: {} responses", got.len());
                match &reference {
                    None => reference = Some(got),
                    Some(want) => ensure!(
                        &got == want,
                        "{case}: the responses differ from the native ceiling's"
                    ),
                }
            }
            let per = |s: f64| s * 1e6 / a.messages as f64;
            eprintln!(
                "  run {}/{}: {case:<24} {rate:>9.0} msg/s  CPU {:>5.0} µs/msg user {:>5.0} system  peak RSS {rss:.0} MB",
                r + 1,
                a.runs,
                per(usage.user),
                per(usage.system),
            );
            results[ci].msgs_per_s.push(rate);
            results[ci].peak_rss_mb.push(rss);
            results[ci].cpu_user_us.push(per(usage.user));
            results[ci].cpu_system_us.push(per(usage.system));
            fs::remove_dir_all(&dir)?;
        }
    }
    println!(
        "responses checked: every case gave the native ceiling's SalesIds and Company for all {} requests",
        a.messages
    );
    report(&results, threads);
    if let Some(path) = &a.json {
        fs::write(path, serde_json::to_string_pretty(&results)?)?;
    }
    let _ = fs::remove_dir_all(&base);
    Ok(())
}

fn report(results: &[CaseResult], threads: usize) {
    let (ceiling, _, _) = stats(&results[1].msgs_per_s);
    println!();
    println!(
        "{:<32} {:>26} {:>22} {:>18} {:>18} {:>12}",
        "case",
        "msg/s median (min–max)",
        "× native multi-thread",
        "CPU user µs/msg",
        "CPU system µs/msg",
        "peak RSS MB"
    );
    for c in results {
        let ratios: Vec<f64> = c.msgs_per_s.iter().map(|r| r / ceiling).collect();
        println!(
            "{:<32} {:>26} {:>22} {:>18} {:>18} {:>12}",
            c.case,
            fmt_stat(&c.msgs_per_s, 0),
            fmt_stat(&ratios, 2),
            fmt_stat(&c.cpu_user_us, 0),
            fmt_stat(&c.cpu_system_us, 0),
            fmt_stat(&c.peak_rss_mb, 0)
        );
    }
    println!("(ratio: each run's throughput over the median of `native {threads} threads`)");
    println!(
        "(CPU: the process's own user and system time over the messages: native from wait4, \
         in-library (`ferry MODE`) over the timed part from getrusage (start-up not timed); \
         `ferry run --once` cases: the whole process from spawn to exit, plugins already compiled \
         into its cache by `ferry check`)"
    );
    for c in results.iter().filter(|c| !c.ferry.is_empty()) {
        println!();
        println!(
            "{}: per stage, ms (median of runs; in the queue: ms inside GatewayQueue calls, commits)",
            c.case
        );
        let stages = &c.ferry[0].stages;
        for (i, (name, ..)) in stages.iter().enumerate() {
            let wall: Vec<f64> = c.ferry.iter().map(|f| f.stages[i].1).collect();
            let q: Vec<f64> = c.ferry.iter().map(|f| f.stages[i].2).collect();
            let commits: Vec<f64> = c.ferry.iter().map(|f| f.stages[i].3 as f64).collect();
            let n = c.ferry[0].stages[i].4.max(1) as f64;
            let (w, ..) = stats(&wall);
            println!(
                "  {name:<9} {:>22} ms  {:>6.1} µs/msg   in the queue {:>8} ms, {:>5} commits",
                fmt_stat(&wall, 0),
                w * 1e3 / n,
                fmt_stat(&q, 0),
                stats(&commits).0
            );
        }
        let p50: Vec<f64> = c.ferry.iter().map(|f| f.p50_ms).collect();
        let p99: Vec<f64> = c.ferry.iter().map(|f| f.p99_ms).collect();
        let qmb: Vec<f64> = c.ferry.iter().map(|f| f.queue_mb).collect();
        let start: Vec<f64> = c.ferry.iter().map(|f| f.startup_ms).collect();
        println!(
            "  latency receive commit -> send commit: p50 {} ms, p99 {} ms; queue file {} MB; start-up (not timed) {} ms",
            fmt_stat(&p50, 0),
            fmt_stat(&p99, 0),
            fmt_stat(&qmb, 1),
            fmt_stat(&start, 0)
        );
    }
}

#[derive(Clone, Debug, Serialize)]
struct ScaleResult {
    backlog: u64,
    msgs_per_s: Vec<f64>,
    peak_rss_mb: Vec<f64>,
    queue_mb: Vec<f64>,
}

fn scale(mut a: ScaleArgs) -> Result<()> {
    if a.smoke {
        a.backlogs = vec![300, 600];
        a.measure = 100;
        a.runs = 1;
    }
    ensure!(
        a.backlogs.iter().all(|&b| b >= a.measure),
        "every backlog must be at least --measure"
    );
    let base = base_dir(&a.dir)?;
    println!("{}", machine(&base));
    println!(
        "scale: {} messages processed (inbound, outbound, send; parallel port, max_parallel 1000) per run with a backlog already queued; {} run(s) per backlog",
        a.measure, a.runs
    );
    let plugin_dir = ferry_tests::plugins_dir();
    // Every backlog is queued first, then the runs are interleaved across
    // backlogs (A B C A B C ...), so a slow moment hits all of them alike.
    let mut setups = Vec::new();
    let mut results = Vec::new();
    for &backlog in &a.backlogs {
        let dir = base.join(format!("backlog-{backlog}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let config = pipeline::write_config(
            &dir,
            &plugin_dir,
            Mode::Parallel,
            a.group_commit,
            None,
            &a.logging,
        )?;
        let data = dir.join("data");
        let (r, took) = pipeline::time(|| pipeline::prequeue(&data, a.seed, 0, backlog, a.size));
        r?;
        eprintln!("  queued {backlog} messages in {:.1} s", took.as_secs_f64());
        setups.push((dir, config, data, backlog));
        results.push(ScaleResult {
            backlog,
            msgs_per_s: vec![],
            peak_rss_mb: vec![],
            queue_mb: vec![],
        });
    }
    for run in 0..a.runs {
        for (i, (dir, config, data, backlog)) in setups.iter_mut().enumerate() {
            if run > 0 {
                // Back to the full backlog.
                pipeline::prequeue(
                    data,
                    a.seed,
                    *backlog + (run as u64 - 1) * a.measure,
                    a.measure,
                    a.size,
                )?;
            }
            let (f, _): (FerryResult, Usage) = child(&[
                "child-ferry",
                "--config",
                &config.to_string_lossy(),
                "--limit",
                &a.measure.to_string(),
            ])?;
            ensure!(
                f.failed == 0 && f.messages >= a.measure,
                "scale: {} sent, {} failed",
                f.messages,
                f.failed
            );
            let busy: f64 = f.stages.iter().skip(1).map(|s| s.1).sum::<f64>() / 1e3;
            let rate = f.messages as f64 / busy;
            eprintln!(
                "  run {}/{}: backlog {backlog:>8}: {rate:>7.0} msg/s  peak RSS {:.0} MB  queue file {:.0} MB",
                run + 1,
                a.runs,
                f.peak_rss_mb,
                f.queue_mb
            );
            let r = &mut results[i];
            r.msgs_per_s.push(rate);
            r.peak_rss_mb.push(f.peak_rss_mb);
            r.queue_mb.push(f.queue_mb);
            let _ = fs::remove_dir_all(dir.join("outbox"));
        }
    }
    for (dir, ..) in &setups {
        fs::remove_dir_all(dir)?;
    }
    println!();
    println!(
        "{:>10} {:>26} {:>18} {:>18} {:>16}",
        "backlog", "msg/s median (min–max)", "× smallest backlog", "peak RSS MB", "queue file MB"
    );
    let (first, ..) = stats(&results[0].msgs_per_s);
    for r in &results {
        let ratios: Vec<f64> = r.msgs_per_s.iter().map(|x| x / first).collect();
        println!(
            "{:>10} {:>26} {:>18} {:>18} {:>16}",
            r.backlog,
            fmt_stat(&r.msgs_per_s, 0),
            fmt_stat(&ratios, 2),
            fmt_stat(&r.peak_rss_mb, 0),
            fmt_stat(&r.queue_mb, 0)
        );
    }
    if let Some(path) = &a.json {
        fs::write(path, serde_json::to_string_pretty(&results)?)?;
    }
    let _ = fs::remove_dir_all(&base);
    Ok(())
}

/// The middle of `v` (its upper middle when even).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The database of the PostgreSQL cases.
fn database_url(given: &Option<String>) -> String {
    given.clone().unwrap_or_else(|| {
        std::env::var("FERRY_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
    })
}

fn search_cmd(a: SearchArgs) -> Result<()> {
    let ferry = ferry_binary()?;
    let base = base_dir(&a.dir)?;
    let url = database_url(&a.url);
    let o = search::Options {
        ferry: &ferry,
        base: &base,
        url: &url,
        messages: a.messages,
        size: a.size,
        reps: a.reps,
    };
    let mut all = Vec::new();
    for q in &a.queues {
        let postgres = match q.as_str() {
            "redb" => false,
            "postgres" => true,
            other => bail!("{other:?} is not a queue backend: redb or postgres"),
        };
        all.push(search::case(&o, postgres)?);
    }
    for r in &all {
        println!(
            "{}: {} messages of ~{} bytes queued (filled in {:.0} s); medians of {} asks",
            r.queue, r.messages, a.size, r.fill_seconds, a.reps
        );
        println!("| search | requests | found | slowest request | whole search |");
        println!("|---|---|---|---|---|");
        for row in &r.rows {
            println!(
                "| {} | {} | {} | {:.1} ms | {:.1} ms |",
                row.what, row.requests, row.found, row.slowest_page_ms, row.search_ms
            );
        }
    }
    if let Some(path) = a.json {
        fs::write(path, serde_json::to_string_pretty(&all)?)?;
    }
    Ok(())
}

/// `ferry-bench hosts`.
fn hosts_cmd(a: HostsArgs) -> Result<()> {
    let ferry = ferry_binary()?;
    let base = base_dir(&a.dir)?;
    let url = database_url(&a.url);
    let o = hosts::Options {
        ferry: &ferry,
        base: &base,
        url: &url,
        messages: a.messages,
        size: a.size,
        seed: a.seed,
    };
    let mut cases = vec![(false, 1)];
    cases.extend(a.hosts.iter().map(|&h| (true, h)));
    let mut results: Vec<Vec<hosts::HostsResult>> = vec![Vec::new(); cases.len()];
    for round in 0..a.runs.max(1) {
        for (i, &(pg, h)) in cases.iter().enumerate() {
            let r = hosts::case(&o, pg, h, round)?;
            eprintln!(
                "round {round}: {} x{}: {:.0} msg/s",
                r.queue, r.hosts, r.msg_per_s
            );
            results[i].push(r);
        }
    }
    let base_rate = median(results[0].iter().map(|r| r.msg_per_s).collect());
    println!(
        "{} orders of {} bytes, {} round(s), medians; ratios against one host on redb",
        a.messages, a.size, a.runs
    );
    println!(
        "| queue | hosts | msg/s | vs redb | host CPU/msg | database CPU/msg | transactions/msg | rows written/msg | table scans/msg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut all = Vec::new();
    for rs in &results {
        let pick = |f: fn(&hosts::HostsResult) -> f64| median(rs.iter().map(f).collect());
        let rate = pick(|r| r.msg_per_s);
        println!(
            "| {} | {} | {:.0} | {:.2}x | {:.0} µs | {:.0} µs | {:.2} | {:.1} | {:.1} |",
            rs[0].queue,
            rs[0].hosts,
            rate,
            rate / base_rate,
            pick(|r| r.host_cpu_us),
            pick(|r| r.db_cpu_us),
            pick(|r| r.db_xacts),
            pick(|r| r.db_rows_written),
            pick(|r| r.db_scans),
        );
        all.extend(rs.iter().cloned());
    }
    if let Some(path) = a.json {
        fs::write(path, serde_json::to_string_pretty(&all)?)?;
    }
    Ok(())
}
