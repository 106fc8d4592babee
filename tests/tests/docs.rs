//! Docs that cannot drift (issue #16, item 13). Every TOML example of
//! README.md, docs/, plugins/README.md and examples/demo is checked with
//! `ferry check` (the folders its grants name created, `plugin_dir` pointed
//! at the built plugins), or read as a plugin's declaration of options; every `ferry …` command line in the docs is checked
//! with the CLI's own parser; and the user guide's split-jobs example answers
//! an order in one `ferry run --once`, as the guide says.

#[path = "support/cli_lines.rs"]
mod cli_lines;

use std::path::{Path, PathBuf};

use ferry_tests::{ferry, plugins_dir};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// (path relative to the repository, text) of every document checked.
fn docs() -> Vec<(String, String)> {
    let mut files = vec![
        "README.md".to_string(),
        "plugins/README.md".to_string(),
        "tests/README.md".to_string(),
        // The README `ferry plugin new` writes into each project.
        "host/templates/README.md".to_string(),
    ];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(format!("docs/{}", p.file_name().unwrap().to_string_lossy()));
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(root().join(&f)).unwrap();
            (f, text)
        })
        .collect()
}

/// A fenced block: its language, first line number (1-based) and text.
struct Block {
    lang: String,
    line: usize,
    text: String,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match (&mut open, fence) {
            (None, true) => {
                open = Some(Block {
                    lang: line.trim_start().trim_start_matches('`').trim().to_string(),
                    line: i + 2,
                    text: String::new(),
                });
            }
            (Some(_), true) => out.push(open.take().unwrap()),
            (Some(b), false) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, false) => {}
        }
    }
    out
}

/// The user guide's complete configuration (its first TOML block).
fn guide_example() -> String {
    let (_, guide) = docs()
        .into_iter()
        .find(|(f, _)| f == "docs/user-guide.md")
        .unwrap();
    blocks(&guide)
        .into_iter()
        .find(|b| b.lang == "toml" && b.text.contains("[ports."))
        .expect("the user guide has a complete configuration")
        .text
}

/// Write `text` as a configuration in `dir`: `plugin_dir` the built
/// plugins, `data_dir` the shared `data`, the granted folders created.
fn prepare(dir: &Path, text: &str, data: &Path) -> PathBuf {
    let mut out = format!(
        "plugin_dir = '{}'\ndata_dir = '{}'\n",
        plugins_dir().display(),
        data.display()
    );
    for line in text.lines() {
        let key = line.split('=').next().unwrap().trim();
        if key == "plugin_dir" || key == "data_dir" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        // Granted folders must exist (`ferry check` says so).
        for part in line.split("path = \"").skip(1) {
            let folder = part.split('"').next().unwrap();
            std::fs::create_dir_all(dir.join(folder)).unwrap();
        }
    }
    let config = dir.join("ferry.toml");
    std::fs::write(&config, out).unwrap();
    config
}

#[test]
fn every_toml_example_in_the_docs_passes_check() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut examples = Vec::new();
    for (file, text) in docs() {
        // `{{config}}`: a template's placeholder, filled by `plugin new`.
        let toml_blocks = blocks(&text)
            .into_iter()
            .filter(|b| b.lang == "toml" && !b.text.contains("{{"));
        for b in toml_blocks {
            if b.text.contains("[[options]]") {
                // A plugin's ferry-plugin.toml: its declaration must read.
                let mut component = b"\0asm\x0d\x00\x01\x00".to_vec();
                ferry::options::embed(&mut component, &b.text);
                match ferry::options::read(&component) {
                    Ok(Some(_)) => {}
                    other => panic!("{file}:{}: not a declaration of options: {other:?}", b.line),
                }
                continue;
            }
            // A fragment (a job, a rule) is checked inside the guide's
            // complete configuration.
            let whole = if b.text.contains("[ports.") {
                b.text
            } else {
                format!("{}\n{}", guide_example(), b.text)
            };
            examples.push((format!("{file}:{}", b.line), whole));
        }
    }
    let demo = std::fs::read_to_string(root().join("examples/demo/ferry.toml")).unwrap();
    examples.push(("examples/demo/ferry.toml:1".into(), demo));
    assert!(
        examples.len() >= 5,
        "too few examples found: {}",
        examples.len()
    );
    let mut failures = Vec::new();
    for (i, (at, text)) in examples.iter().enumerate() {
        let dir = tmp.path().join(format!("example-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = prepare(&dir, text, &data);
        let out = ferry(&["check", "--config", config.to_str().unwrap()]);
        if !out.status.success() {
            failures.push(format!(
                "{at}: ferry check refuses it:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_command_line_in_the_docs_is_one_the_cli_accepts() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let is_command = |l: &str| {
        let l = l.trim().trim_start_matches("$ ");
        l.starts_with("ferry ") || l.starts_with("target/debug/ferry ")
    };
    for (file, text) in docs() {
        let mut lines: Vec<(usize, String)> = Vec::new();
        for b in blocks(&text) {
            for (i, l) in b.text.lines().enumerate() {
                if is_command(l) {
                    lines.push((b.line + i, l.to_string()));
                }
            }
        }
        let mut in_block = false;
        for (i, l) in text.lines().enumerate() {
            if l.trim_start().starts_with("```") {
                in_block = !in_block;
                continue;
            }
            if in_block {
                continue;
            }
            for span in l.split('`').skip(1).step_by(2) {
                if is_command(span) {
                    lines.push((i + 1, span.to_string()));
                }
            }
        }
        for (line, cmd) in lines {
            checked += 1;
            if let Err(e) = cli_lines::check_command(&cmd) {
                failures.push(format!("{file}:{line}: {e}"));
            }
        }
    }
    assert!(checked >= 30, "only {checked} command lines found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_guides_split_jobs_example_answers_an_order_in_one_run_once() {
    let (_, guide) = docs()
        .into_iter()
        .find(|(f, _)| f == "docs/user-guide.md")
        .unwrap();
    let split = blocks(&guide)
        .into_iter()
        .find(|b| b.lang == "toml" && b.text.contains("[jobs.process-and-send]"))
        .expect("the guide's split-jobs example")
        .text;
    let example = guide_example();
    let without_aif = &example[..example.find("[jobs.aif]").expect("the guide's aif job")];
    let tmp = tempfile::tempdir().unwrap();
    let config = prepare(
        tmp.path(),
        &format!("{without_aif}\n{split}"),
        &tmp.path().join("data"),
    );
    let inbox = tmp.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("order.xml"), ferry_tests::running::order(61)).unwrap();
    let out = ferry(&["run", "--once", "--config", config.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers = std::fs::read_dir(tmp.path().join("outbox")).map_or(0, |d| d.count());
    assert_eq!(answers, 1, "{}", String::from_utf8_lossy(&out.stderr));
    let copies = std::fs::read_dir(tmp.path().join("copies")).map_or(0, |d| d.count());
    assert_eq!(copies, 1, "the order's copy through the Send API");
}
