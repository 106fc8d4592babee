//! `ferry-bench`: Ferry's end-to-end throughput against a native ceiling
//! measured in the same run, and how the cost grows with the backlog. See
//! BENCHMARKS.md for the method and the figures.
//!
//! Every measured run is a child process (this binary again, with a hidden
//! subcommand), so its peak RSS is its own; runs of the different cases are
//! interleaved (A B C A B C ...), so a slow moment of the machine hits all
//! cases alike.

mod native;
mod orders;
mod pipeline;

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
        Some(Cmd::Smoke { dir }) => {
            let mut r = Cli::parse_from(["ferry-bench"]).run;
            r.smoke = true;
            r.dir = dir.clone();
            run(r)?;
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

/// Run this binary with `args`; parse the JSON line it prints.
fn child<T: for<'de> Deserialize<'de>>(args: &[&str]) -> Result<T> {
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}",
            exe.display(),
            args.join(" "),
            out.status
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("child printed {text:?}"))
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
    ferry: Vec<FerryResult>,
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

    let mut cases: Vec<String> = vec![
        "native 1 thread".into(),
        format!("native {threads} threads"),
    ];
    cases.extend(
        a.modes
            .iter()
            .map(|m| format!("ferry {m:?}").to_lowercase()),
    );
    let mut results: Vec<CaseResult> = cases
        .iter()
        .map(|c| CaseResult {
            case: c.clone(),
            msgs_per_s: vec![],
            peak_rss_mb: vec![],
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
            let mode = ci.checked_sub(2).map(|i| a.modes[i]);
            write_inputs(
                &inbox,
                if mode == Some(Mode::Conversations) {
                    &with_conv
                } else {
                    &plain
                },
            )?;
            let (rate, rss) = match mode {
                None => {
                    let t = if ci == 0 { 1 } else { threads };
                    let n: NativeResult = child(&[
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
                    (n.messages as f64 / n.seconds, n.peak_rss_mb)
                }
                Some(m) => {
                    let config = pipeline::write_config(
                        &dir,
                        &plugin_dir,
                        m,
                        a.group_commit,
                        a.workers,
                        &a.logging,
                    )?;
                    let f: FerryResult =
                        child(&["child-ferry", "--config", &config.to_string_lossy()])?;
                    ensure!(
                        f.messages as usize == a.messages && f.failed == 0,
                        "{case}: {} messages sent, {} failed",
                        f.messages,
                        f.failed
                    );
                    let rate = f.messages as f64 / f.seconds;
                    let rss = f.peak_rss_mb;
                    results[ci].ferry.push(f);
                    (rate, rss)
                }
            };
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
            eprintln!(
                "  run {}/{}: {case:<22} {rate:>9.0} msg/s  peak RSS {rss:.0} MB",
                r + 1,
                a.runs
            );
            results[ci].msgs_per_s.push(rate);
            results[ci].peak_rss_mb.push(rss);
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
        "{:<22} {:>26} {:>22} {:>16}",
        "case", "msg/s median (min–max)", "× native multi-thread", "peak RSS MB"
    );
    for c in results {
        let ratios: Vec<f64> = c.msgs_per_s.iter().map(|r| r / ceiling).collect();
        println!(
            "{:<22} {:>26} {:>22} {:>16}",
            c.case,
            fmt_stat(&c.msgs_per_s, 0),
            fmt_stat(&ratios, 2),
            fmt_stat(&c.peak_rss_mb, 0)
        );
    }
    println!("(ratio: each run's throughput over the median of `native {threads} threads`)");
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
            let f: FerryResult = child(&[
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
