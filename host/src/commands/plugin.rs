//! `ferry plugin check|list`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::runtime::{Inspection, Runtime, RuntimeOptions};

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Check a plugin: print its world, imports, exports and content hash,
    /// and what is wrong with it if anything (exit code 1).
    Check {
        /// The component file (`.wasm`).
        file: PathBuf,
    },
    /// List the plugins in a directory with their world and hash.
    List {
        /// The plugin directory.
        dir: PathBuf,
    },
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(RuntimeOptions::default())?;
    match cmd {
        PluginCommand::Check { file } => {
            let i = runtime.inspect(&file);
            print_inspection(&file, &i);
            Ok(if i.error.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        PluginCommand::List { dir } => list(&runtime, &dir),
    }
}

fn print_inspection(file: &Path, i: &Inspection) {
    println!("plugin:  {}", i.name);
    println!("file:    {} ({} bytes)", file.display(), i.size);
    if !i.hash.is_empty() {
        println!("sha256:  {}", i.hash);
    }
    println!(
        "world:   {}",
        i.world
            .map_or("none (not a Ferry plugin)".to_string(), |w| format!(
                "{w} (ferry:plugin@0.1.0)"
            ))
    );
    if !i.exports.is_empty() {
        println!("exports:");
        for e in &i.exports {
            println!("  {e}");
        }
    }
    if !i.imports.is_empty() {
        println!("imports:");
        for e in &i.imports {
            println!("  {e}");
        }
    }
    match &i.error {
        None => println!("status:  ok"),
        Some(e) => println!("status:  REFUSED: {e}"),
    }
}

fn list(runtime: &Runtime, dir: &Path) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read plugin directory {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    println!("{:<28} {:<8} {:<14} STATUS", "PLUGIN", "WORLD", "SHA256");
    let mut bad = false;
    for f in files {
        let i = runtime.inspect(&f);
        let status = match &i.error {
            None => "ok".to_string(),
            Some(e) => {
                bad = true;
                format!("refused: {e}")
            }
        };
        println!(
            "{:<28} {:<8} {:<14} {}",
            i.name,
            i.world.map_or("-".to_string(), |w| w.to_string()),
            &i.hash[..i.hash.len().min(12)],
            status
        );
    }
    Ok(if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
