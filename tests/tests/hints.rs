//! Every hint Ferry prints names a key or a command that exists (issue #16,
//! item 7). The hints are collected from the host's source (its string
//! literals, outside comments and test modules):
//!
//! - a backticked `snake_case` word or `key = value` is a configuration key:
//!   it must be a key of the configuration schema (`Config::keys`, probed
//!   from the structs the file is read with);
//! - a backticked `ferry …` is a command line: the CLI's own parser (clap)
//!   must accept it, placeholders (`ID`, `JOB`, `FILE`…) filled in;
//! - a `--option` must be an option of some `ferry` command, unless it is one
//!   of the few flags of other tools that hints quote (listed below, with the
//!   tool);
//! - a backticked `FERRY_…` is an environment variable the CLI reads;
//! - in the shipped plugins' sources, "option `X`" and "set `X`" name an
//!   option the plugin declares in its `ferry-plugin.toml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[path = "support/cli_lines.rs"]
mod cli_lines;

use clap::CommandFactory;
use ferry::commands::Cli;

/// Flags of other tools that the host's hints and build commands quote.
const FOREIGN_FLAGS: &[(&str, &str)] = &[
    ("--release", "cargo"),
    ("--target", "cargo"),
    ("--message-format", "cargo"),
    ("--manifest-path", "cargo"),
    ("--disable", "componentize-js"),
    ("--wit", "componentize-js"),
    ("--world-name", "componentize-js"),
    ("--no-install", "npx"),
];

/// One hint found in the source.
#[derive(Debug)]
struct Hint {
    at: String,
    text: String,
}

/// The CLI's long options, subcommand names and environment variables.
struct CliFacts {
    options: BTreeSet<String>,
    env: BTreeSet<String>,
}

fn cli_facts() -> CliFacts {
    fn walk(cmd: &clap::Command, facts: &mut CliFacts) {
        for a in cmd.get_arguments() {
            if let Some(l) = a.get_long() {
                facts.options.insert(format!("--{l}"));
            }
            if let Some(e) = a.get_env() {
                facts.env.insert(e.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, facts);
        }
    }
    let mut facts = CliFacts {
        options: ["--help", "--version"].map(String::from).into(),
        env: BTreeSet::new(),
    };
    walk(&Cli::command(), &mut facts);
    facts
}

/// The leaf names of every configuration key.
fn config_keys() -> BTreeSet<String> {
    ferry::config::Config::keys()
        .iter()
        .map(|k| k.rsplit('.').next().unwrap().to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if p.file_name().unwrap() != "tests" {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") && p.file_name().unwrap() != "tests.rs" {
            out.push(p);
        }
    }
}

/// (place, line) of every code line of the host that is not a comment, up
/// to the file's test module.
fn code_lines() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    rust_files(&root.join("host/src"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            if line.trim_start().starts_with("//") {
                continue;
            }
            out.push((format!("{rel}:{}", i + 1), line.to_string()));
        }
    }
    out
}

/// What is wrong with the hints of `lines`, one entry each.
fn wrong_hints(
    lines: &[(String, String)],
    facts: &CliFacts,
    keys: &BTreeSet<String>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (at, line) in lines {
        let parts: Vec<&str> = line.split('`').collect();
        if parts.len() % 2 == 1 {
            for span in parts.iter().skip(1).step_by(2) {
                let hint = Hint {
                    at: at.clone(),
                    text: span.to_string(),
                };
                if let Some(problem) = check_span(&hint, facts, keys) {
                    wrong.push(problem);
                }
                checked += 1;
            }
        }
        // Bare options, backticked or not.
        for (i, _) in line.match_indices("--") {
            let rest = &line[i..];
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            let preceded_by_space_or_quote =
                i == 0 || matches!(line.as_bytes()[i - 1], b' ' | b'"' | b'`' | b'(' | b'[');
            if word.len() < 4 || !preceded_by_space_or_quote {
                continue;
            }
            checked += 1;
            if !facts.options.contains(&word) && !FOREIGN_FLAGS.iter().any(|(f, _)| *f == word) {
                wrong.push(format!(
                    "{at}: option {word} is not an option of any ferry command"
                ));
            }
        }
    }
    assert!(checked > 0 || lines.is_empty());
    wrong
}

fn check_span(h: &Hint, facts: &CliFacts, keys: &BTreeSet<String>) -> Option<String> {
    let t = h.text.trim();
    if t.starts_with("ferry ") {
        return cli_lines::check_command(t)
            .err()
            .map(|e| format!("{}: command refused by the CLI: {e}", h.at));
    }
    if t.starts_with("FERRY_") {
        return (!facts.env.contains(t))
            .then(|| format!("{}: environment variable {t} is not read by the CLI", h.at));
    }
    let ident = t.split(" = ").next().unwrap();
    let is_key_like = ident.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && (ident.contains('_') || t.contains(" = "));
    if is_key_like && !keys.contains(ident) {
        return Some(format!("{}: `{t}` names no configuration key", h.at));
    }
    None
}

#[test]
fn the_checker_catches_made_up_keys_commands_and_options() {
    let facts = cli_facts();
    let keys = config_keys();
    let bad = [
        "\"set `time_limit` on the port\"",
        "\"use `respones = \\\"discard\\\"`\"",
        "\"re-queue it with `ferry queue requeue ID`\"",
        "\"or use another --data-dir\"",
        "\"set `FERRY_NO_SUCH`\"",
    ];
    let lines: Vec<(String, String)> = bad
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("bad:{i}"), l.to_string()))
        .collect();
    let wrong = wrong_hints(&lines, &facts, &keys);
    assert_eq!(wrong.len(), bad.len(), "{wrong:#?}");
    let good = [
        "\"set `time_limit_ms` on the port, or `responses = \\\"discard\\\"`\"",
        "\"see `ferry queue show ID`, then `ferry queue delete ID`; `ferry history MESSAGE_ID`\"",
        "\"or pass --componentize-py PATH or set `FERRY_COMPONENTIZE_PY`\"",
    ];
    let lines: Vec<(String, String)> = good
        .iter()
        .map(|l| ("good:1".to_string(), l.to_string()))
        .collect();
    assert_eq!(wrong_hints(&lines, &facts, &keys), Vec::<String>::new());
}

#[test]
fn every_hint_names_a_key_or_command_that_exists() {
    let facts = cli_facts();
    let keys = config_keys();
    assert!(
        keys.contains("time_limit_ms") && keys.contains("on_input"),
        "{keys:?}"
    );
    let lines = code_lines();
    assert!(lines.len() > 1000, "the host's source was not found");
    let wrong = wrong_hints(&lines, &facts, &keys);
    assert!(
        wrong.is_empty(),
        "hints that send the user nowhere:\n{}",
        wrong.join("\n")
    );
}

/// The options each shipped plugin declares, by plugin folder (read from
/// its `ferry-plugin.toml` as the host reads it from the component).
fn declared_options(dir: &Path) -> Option<Vec<String>> {
    let manifest = std::fs::read_to_string(dir.join("ferry-plugin.toml")).ok()?;
    let mut component = b"\0asm\x0d\x00\x01\x00".to_vec();
    ferry::options::embed(&mut component, &manifest);
    let decls = ferry::options::read(&component).expect("a valid declaration")?;
    Some(decls.into_iter().map(|d| d.name).collect())
}

#[test]
fn every_plugin_hint_names_an_option_the_plugin_declares() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for group in ["plugins", "plugins/python", "plugins/js"] {
        for e in std::fs::read_dir(root.join(group)).unwrap() {
            let p = e.unwrap().path();
            if p.join("ferry-plugin.toml").is_file() {
                dirs.push(p);
            }
        }
    }
    dirs.sort();
    assert!(dirs.len() >= 6, "{dirs:?}");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for dir in dirs {
        let declared = declared_options(&dir).unwrap_or_else(|| panic!("{dir:?} declares nothing"));
        let mut sources = Vec::new();
        rust_files(&dir, &mut sources);
        sources.extend(
            ["app.py", "app.js"]
                .map(|f| dir.join(f))
                .into_iter()
                .filter(|p| p.is_file()),
        );
        for f in sources {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("#[cfg(test)]") {
                    break;
                }
                if code.starts_with("//") || code.starts_with('#') {
                    continue;
                }
                let line = line.replace("\\`", "`");
                for lead in ["option `", "set `"] {
                    for (at, _) in line.match_indices(lead) {
                        let rest = &line[at + lead.len()..];
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        checked += 1;
                        let known = declared.iter().any(|d| ferry::glob::glob_match(d, &name));
                        if !known {
                            wrong.push(format!(
                                "{}:{}: option `{name}` is not declared (declared: {})",
                                f.display(),
                                i + 1,
                                declared.join(", ")
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(checked >= 5, "only {checked} plugin hints found");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
