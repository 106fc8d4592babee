//! Checking a documented `ferry …` command line against the CLI's own
//! parser (clap), shared by the hints and the docs tests.
//!
//! A documented line may stand for several: `hold|release|delete` and
//! `list/show` are alternatives (each is checked), `[--last N]` is an
//! optional part (checked as given), and a word starting with a capital
//! letter (`ID`, `FILE.wasm`, `F`) is a placeholder.

use clap::Parser as _;
use ferry::commands::Cli;

/// Check `line` (starting with `ferry`, `target/debug/ferry` or `$ ferry`);
/// the reason of the first concrete line the CLI refuses.
pub fn check_command(line: &str) -> Result<(), String> {
    let line = line.trim().trim_start_matches("$ ");
    let line = line.split(" #").next().unwrap().replace('\\', "");
    let line = line.replace("[", " ").replace("]", " ");
    // `ferry …` speaks of every command: nothing to check past `ferry`.
    let mut words: Vec<String> = line
        .split_whitespace()
        .filter(|w| !matches!(*w, "…" | "..."))
        .map(str::to_string)
        .collect();
    if words.first().is_some_and(|w| w.ends_with("/ferry")) {
        words[0] = "ferry".into();
    }
    if words.first().map(String::as_str) != Some("ferry") {
        return Err(format!("not a ferry command line: {line}"));
    }
    for variant in expand(&words) {
        parse(&variant).map_err(|e| format!("`{}`: {e}", variant.join(" ")))?;
    }
    Ok(())
}

/// The concrete command lines `words` stands for.
fn expand(words: &[String]) -> Vec<Vec<String>> {
    let alternatives = |w: &str| -> Option<Vec<String>> {
        let sep = if w.contains('|') {
            '|'
        } else if w.contains('/')
            && w.split('/')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        {
            '/'
        } else {
            return None;
        };
        Some(
            w.split(sep)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        )
    };
    for (i, w) in words.iter().enumerate() {
        if let Some(alts) = alternatives(w) {
            return alts
                .into_iter()
                .flat_map(|a| {
                    let mut v = words.to_vec();
                    v[i] = a;
                    expand(&v)
                })
                .collect();
        }
    }
    let concrete = words
        .iter()
        .map(|w| match w.as_str() {
            "COMMAND" => "run".to_string(),
            w if w.starts_with(|c: char| c.is_ascii_uppercase()) => "1".to_string(),
            w => w.to_string(),
        })
        .collect();
    vec![concrete]
}

fn parse(argv: &[String]) -> Result<(), String> {
    use clap::error::ErrorKind;
    match Cli::try_parse_from(argv) {
        Ok(_) => Ok(()),
        // A summary line (`ferry queue list/show/…`) may leave out a
        // required argument; names of commands and options must be right.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::MissingRequiredArgument
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.to_string().lines().next().unwrap_or("").to_string()),
    }
}

#[test]
fn documented_forms_expand_and_bad_ones_are_refused() {
    for good in [
        "ferry queue hold|release|delete --config ferry.toml ID",
        "ferry queue list/show/hold/release/delete",
        "$ ferry job history --config ferry.toml JOB [--last N]   # each occurrence",
        "target/debug/ferry run --config target/demo/ferry.toml",
        "ferry plugin new --lang rust\\|python\\|js --world rule\\|adapter\\|service NAME",
        "ferry COMMAND --help",
    ] {
        assert_eq!(check_command(good), Ok(()), "{good}");
    }
    for bad in [
        "ferry queue requeue ID",
        "ferry run --data-dir d",
        "ferry queue hold|requeue ID",
        "ferry job lsit",
        "ferry check --once",
    ] {
        assert!(check_command(bad).is_err(), "{bad} accepted");
    }
}
