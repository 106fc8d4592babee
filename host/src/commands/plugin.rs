//! `ferry plugin check|list|new|build`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};

use crate::runtime::{Inspection, Runtime, RuntimeOptions, World};

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
    /// List plugins: those in force in the running host of a configuration
    /// (live version, load time, last refusal, paused ports), or with DIR
    /// the components in a directory with their world and hash.
    List {
        /// A plugin directory to list instead.
        dir: Option<PathBuf>,
        /// The configuration of the host to show.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
    },
    /// Create a ready-to-build plugin project in DIR/NAME: source, build
    /// script, README, ferry-plugin.toml and a copy of Ferry's WIT.
    New {
        /// The language.
        #[arg(long, value_enum)]
        lang: Lang,
        /// The world the plugin targets.
        #[arg(long, value_enum)]
        world: WorldArg,
        /// The plugin's name: lowercase letters, digits and `-`, starting
        /// with a letter (the component is NAME.wasm).
        name: String,
        /// The folder to create the project in (default: the current one).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build a plugin project (Rust, Python or JavaScript, detected), check
    /// the component as `plugin check` does and print its path
    /// (DIR/target/NAME.wasm).
    Build {
        /// The project folder.
        dir: PathBuf,
        /// componentize-py to use for Python (default: DIR/.venv, then PATH).
        #[arg(long, env = "FERRY_COMPONENTIZE_PY", value_name = "PATH")]
        componentize_py: Option<PathBuf>,
        /// componentize-js to use for JavaScript (default:
        /// DIR/node_modules, then PATH, then npx).
        #[arg(long, env = "FERRY_COMPONENTIZE_JS", value_name = "PATH")]
        componentize_js: Option<PathBuf>,
    },
}

/// A plugin project's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust with wit-bindgen 0.63, built with cargo for wasm32-wasip2.
    Rust,
    /// Python, built with componentize-py 0.25.1.
    Python,
    /// JavaScript, built with componentize-js 0.23.0.
    #[value(alias = "javascript")]
    Js,
}

impl Lang {
    fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    fn parse(s: &str) -> Option<Lang> {
        Lang::from_str(s, true).ok()
    }
}

/// The world of `plugin new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorldArg {
    /// A rule (WIT world `rule-plugin`).
    #[value(alias = "rule-plugin")]
    Rule,
    /// An adapter (WIT world `adapter`).
    Adapter,
    /// A service (WIT world `service-plugin`).
    #[value(alias = "service-plugin")]
    Service,
}

impl WorldArg {
    fn wit_name(self) -> &'static str {
        match self {
            WorldArg::Rule => "rule-plugin",
            WorldArg::Adapter => "adapter",
            WorldArg::Service => "service-plugin",
        }
    }

    fn from_wit_name(name: &str) -> Option<WorldArg> {
        [WorldArg::Rule, WorldArg::Adapter, WorldArg::Service]
            .into_iter()
            .find(|w| w.wit_name() == name)
    }

    fn world(self) -> World {
        match self {
            WorldArg::Rule => World::Rule,
            WorldArg::Adapter => World::Adapter,
            WorldArg::Service => World::Service,
        }
    }
}

pub fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    let cmd = match cmd {
        PluginCommand::New {
            lang,
            world,
            name,
            dir,
        } => return new(lang, world, &name, &dir),
        PluginCommand::Build {
            dir,
            componentize_py,
            componentize_js,
        } => return build(&dir, componentize_py, componentize_js),
        cmd => cmd,
    };
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
        PluginCommand::List { dir: Some(dir), .. } => list(&runtime, &dir),
        PluginCommand::List { dir: None, config } => list_live(&runtime, &config),
        PluginCommand::New { .. } | PluginCommand::Build { .. } => unreachable!("handled above"),
    }
}

/// What the running host of `config` has in force, from its status file;
/// the plugin directory when no host has written one.
fn list_live(runtime: &Runtime, config: &Path) -> anyhow::Result<ExitCode> {
    let (config, data_dir) = super::run::load_for_host(config)?;
    let plugin_dir = config.as_ref().map(|c| c.plugin_dir.clone());
    // The running host answers through its control API; a stopped one's
    // last status file is read directly.
    let target = crate::control::client::open_with(config, data_dir.clone())?;
    match (target.manager().plugins()?, plugin_dir) {
        (Some(status), _) => {
            print!("{}", status.render());
            Ok(ExitCode::SUCCESS)
        }
        (None, Some(plugin_dir)) => {
            println!(
                "no running host has written {} yet; the plugin directory:",
                data_dir.join(crate::reload::STATUS_FILE).display()
            );
            list(runtime, &plugin_dir)
        }
        (None, None) => anyhow::bail!(
            "the running host has not written {} yet; try again in a moment",
            data_dir.join(crate::reload::STATUS_FILE).display()
        ),
    }
}

fn print_inspection(file: &Path, i: &Inspection) {
    println!("plugin:  {}", i.name);
    match std::fs::metadata(file) {
        Ok(_) => println!("file:    {} ({} bytes)", file.display(), i.size),
        Err(e) => println!("file:    {} ({e})", file.display()),
    }
    if !i.hash.is_empty() {
        println!("sha256:  {}", i.hash);
    }
    println!(
        "world:   {}",
        i.world
            .map_or("none (not a Ferry plugin)".to_string(), |w| {
                match i.contract {
                    Some(v) if v == crate::runtime::contract::version() => {
                        format!("{w} (ferry:plugin@{v})")
                    }
                    Some(v) => format!(
                        "{w} (ferry:plugin@{v}, run through the adapter layer: rebuild against \
                         ferry:plugin@{} for batches)",
                        crate::runtime::contract::version()
                    ),
                    None => format!("{w} (ferry:plugin@?)"),
                }
            })
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
    match &i.options {
        None => println!("options: not declared (any option is passed on unchecked)"),
        Some(o) if o.is_empty() => println!("options: none"),
        Some(o) => {
            println!("options:");
            for line in crate::options::describe(o) {
                println!("  {line}");
            }
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

// ---- plugin new -------------------------------------------------------------

/// Ferry's WIT contract, written into every new project.
const WIT: &str = crate::runtime::contract::WIT;
const README: &str = include_str!("../../templates/README.md");

/// (path in the project, template) for a language and world.
fn templates(lang: Lang, world: WorldArg) -> Vec<(&'static str, &'static str)> {
    match lang {
        Lang::Rust => vec![
            (
                "Cargo.toml",
                include_str!("../../templates/rust/Cargo.toml"),
            ),
            (
                ".cargo/config.toml",
                include_str!("../../templates/rust/cargo-config.toml"),
            ),
            ("build.sh", include_str!("../../templates/rust/build.sh")),
            (".gitignore", include_str!("../../templates/rust/gitignore")),
            (
                "src/lib.rs",
                match world {
                    WorldArg::Rule => include_str!("../../templates/rust/rule.rs"),
                    WorldArg::Adapter => include_str!("../../templates/rust/adapter.rs"),
                    WorldArg::Service => include_str!("../../templates/rust/service.rs"),
                },
            ),
        ],
        Lang::Python => vec![
            ("build.sh", include_str!("../../templates/python/build.sh")),
            (
                ".gitignore",
                include_str!("../../templates/python/gitignore"),
            ),
            (
                "app.py",
                match world {
                    WorldArg::Rule => include_str!("../../templates/python/rule.py"),
                    WorldArg::Adapter => include_str!("../../templates/python/adapter.py"),
                    WorldArg::Service => include_str!("../../templates/python/service.py"),
                },
            ),
        ],
        Lang::Js => vec![
            ("build.sh", include_str!("../../templates/js/build.sh")),
            (".gitignore", include_str!("../../templates/js/gitignore")),
            (
                "package.json",
                include_str!("../../templates/js/package.json"),
            ),
            (
                "app.js",
                match world {
                    WorldArg::Rule => include_str!("../../templates/js/rule.js"),
                    WorldArg::Adapter => include_str!("../../templates/js/adapter.js"),
                    WorldArg::Service => include_str!("../../templates/js/service.js"),
                },
            ),
        ],
    }
}

/// The README's language-specific paragraphs.
fn readme_parts(lang: Lang, world: WorldArg, name: &str) -> [(&'static str, String); 5] {
    let (title, toolchain, debug) = match lang {
        Lang::Rust => (
            "Rust",
            "Needs Rust 1.95+ with `rustup target add wasm32-wasip2`; the bindings come from \
             `wit-bindgen = \"=0.63.0\"` and `wit/` (`.cargo/config.toml` makes wasm32-wasip2 the \
             default target, so `cargo build --release` works too). Unit-test your logic with \
             `cargo test --target x86_64-unknown-linux-gnu` (your host's triple)."
                .to_string(),
            "a panic's message appears there.",
        ),
        Lang::Python => (
            "Python",
            "Needs componentize-py 0.25.1: `python3 -m venv .venv && .venv/bin/pip install \
             componentize-py==0.25.1` (`ferry plugin build` and `build.sh` find `.venv/`; or pass \
             `--componentize-py PATH`, or set `FERRY_COMPONENTIZE_PY`). `componentize-py -d wit -w \
             WORLD bindings .` writes the Python bindings next to `app.py` for your editor."
                .to_string(),
            "an uncaught exception traps the call and its traceback appears there; \
             `raise Err(PluginError_Rejected(...))` returns a rule error instead.",
        ),
        Lang::Js => (
            "JavaScript",
            "Needs node 20+ and componentize-js 0.23.0: `npm install` here (`package.json` pins \
             it; `ferry plugin build` and `build.sh` find `node_modules/`; or pass \
             `--componentize-js PATH`, or set `FERRY_COMPONENTIZE_JS`). The build runs \
             `componentize-js --wit wit --world-name WORLD --disable http fetch-event`: without \
             `--disable http fetch-event` the component imports wasi:http, which Ferry does not \
             provide."
                .to_string(),
            "a thrown `Error` traps the call and its message appears there; throwing \
             `{ payload: { tag: 'rejected', val: '...' } }` returns a rule error instead.",
        ),
    };
    let (what, config) = match world {
        WorldArg::Rule => (
            "A rule: `apply` gets one document and returns it (this starting point passes it on \
             unchanged and logs a line), or refuses it."
                .to_string(),
            format!(
                "[rules.{name}]\ncomponent = \"{name}\"\noptions = {{ note = \"hello\" }}\n\n\
                 [ports.orders-in]\n# ...\npipeline = [\"{name}\"]"
            ),
        ),
        WorldArg::Adapter => (
            "An adapter: `receive` moves messages into Ferry, `send` out of it, in \
             transactions. This starting point touches no files: it receives nothing and logs \
             each message sent when the host commits."
                .to_string(),
            format!(
                "[adapters.{name}]\ncomponent = \"{name}\"\n\n\
                 [ports.out]\ndirection = \"outbound\"\nadapter = \"{name}\"\naddress = \"out\""
            ),
        ),
        WorldArg::Service => (
            "A service, chosen by a message's `Action`: this starting point answers each request \
             with its own body (an echo) and logs a line."
                .to_string(),
            format!(
                "[services.{name}]\ncomponent = \"{name}\"\n\n\
                 [ports.orders-in]\n# ...\nservices = [{{ action = \"*/EchoService/*\", service = \"{name}\" }}]"
            ),
        ),
    };
    [
        ("{{lang_title}}", title.to_string()),
        ("{{toolchain}}", toolchain),
        ("{{debug}}", debug.to_string()),
        ("{{what}}", what),
        ("{{config}}", config),
    ]
}

fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// `ferry plugin new`.
fn new(lang: Lang, world: WorldArg, name: &str, parent: &Path) -> anyhow::Result<ExitCode> {
    if !valid_name(name) {
        bail!(
            "invalid plugin name {name:?}: use lowercase letters, digits and `-`, starting with a \
             letter (e.g. `order-policy`)"
        );
    }
    let dir = parent.join(name);
    if dir.exists() {
        bail!(
            "{} already exists; choose another name or --dir, or remove it",
            dir.display()
        );
    }
    let substitute = |text: &str| {
        let mut out = text
            .replace("{{name}}", name)
            .replace("{{crate_name}}", &name.replace('-', "_"))
            .replace("{{world}}", world.wit_name())
            .replace("{{lang}}", lang.as_str());
        for (key, value) in readme_parts(lang, world, name) {
            out = out.replace(key, &value);
        }
        out
    };
    // The options the plugin takes travel in the component (see
    // `crate::options`); the rule template reads one, `note`.
    let options = match world {
        WorldArg::Rule => {
            "\n[[options]]\nname = \"note\"\ntype = \"string\"\ndefault = \"\"\n\
             doc = \"a note added to the rule's log line\"\n"
        }
        WorldArg::Adapter | WorldArg::Service => "options = []\n",
    };
    let manifest = format!(
        "# A Ferry plugin project: `ferry plugin build .` reads this.\n\
         name = \"{name}\"\nlang = \"{}\"\nworld = \"{}\"\n\n\
         # The options the plugin takes, built into the component: `ferry check`\n\
         # refuses other options and values of the wrong type, `ferry plugin check`\n\
         # lists them. One [[options]] table each (type: string, integer, boolean\n\
         # or table; default and doc optional); `options = []` for none.\n{options}",
        lang.as_str(),
        world.wit_name()
    );
    let mut files: Vec<(&str, String)> = templates(lang, world)
        .into_iter()
        .map(|(path, t)| (path, substitute(t)))
        .collect();
    files.push(("README.md", substitute(README)));
    files.push(("ferry-plugin.toml", manifest));
    files.push(("wit/ferry.wit", WIT.to_string()));

    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (path, text) in &files {
        let file = dir.join(path);
        if let Some(p) = file.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
        if path.ends_with(".sh") {
            make_executable(&file)?;
        }
    }
    println!(
        "created {} ({} plugin, world {}):",
        dir.display(),
        lang.as_str(),
        world.wit_name()
    );
    let mut paths: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
    paths.sort();
    for p in paths {
        println!("  {p}");
    }
    println!("build it: ferry plugin build {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
fn make_executable(file: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", file.display()))
}

#[cfg(not(unix))]
fn make_executable(_file: &Path) -> anyhow::Result<()> {
    Ok(())
}

// ---- plugin build -----------------------------------------------------------

/// `ferry-plugin.toml`, all keys optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: Option<String>,
    lang: Option<String>,
    world: Option<String>,
    /// The declared options: read from the built component (`crate::options`).
    #[allow(dead_code)]
    options: Option<toml::Value>,
}

/// `ferry plugin build`.
fn build(
    dir: &Path,
    componentize_py: Option<PathBuf>,
    componentize_js: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    if !dir.is_dir() {
        bail!("{} is not a folder (a plugin project)", dir.display());
    }
    let manifest_path = dir.join("ferry-plugin.toml");
    let manifest: Manifest = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => bail!("cannot read {}: {e}", manifest_path.display()),
    };
    let lang = match &manifest.lang {
        Some(l) => Lang::parse(l).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: unknown lang {l:?} (rust, python or js)",
                manifest_path.display()
            )
        })?,
        None if dir.join("Cargo.toml").is_file() => Lang::Rust,
        None if dir.join("app.py").is_file() => Lang::Python,
        None if dir.join("app.js").is_file() => Lang::Js,
        None => bail!(
            "cannot tell the language of {}: no ferry-plugin.toml with `lang`, and no Cargo.toml, \
             app.py or app.js (`ferry plugin new` creates a project)",
            dir.display()
        ),
    };
    let world = match &manifest.world {
        Some(w) => Some(WorldArg::from_wit_name(w).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: unknown world {w:?} (rule-plugin, adapter or service-plugin)",
                manifest_path.display()
            )
        })?),
        None => None,
    };
    let name = match &manifest.name {
        Some(n) => n.clone(),
        None => std::fs::canonicalize(dir)?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into()),
    };
    let wit = if dir.join("wit").is_dir() {
        dir.join("wit")
    } else {
        // Projects in Ferry's repository (plugins/python/*, plugins/js/*)
        // use the repository's wit/.
        dir.ancestors()
            .skip(1)
            .map(|a| a.join("wit"))
            .find(|w| w.join("ferry.wit").is_file())
            .ok_or_else(|| anyhow::anyhow!("{} has no wit/ folder (ferry.wit)", dir.display()))?
    };
    let wit = std::path::absolute(&wit)?;
    let out_dir = dir.join("target");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let out = out_dir.join(format!("{name}.wasm"));
    let need_world = || {
        world.ok_or_else(|| {
            anyhow::anyhow!(
                "{}: say which world the plugin targets: world = \"rule-plugin\" (or \"adapter\", \
                 \"service-plugin\")",
                manifest_path.display()
            )
        })
    };
    let started = std::time::Instant::now();
    match lang {
        Lang::Rust => build_rust(dir, &out)?,
        Lang::Python => {
            let world = need_world()?;
            let tool = find_tool(
                componentize_py,
                &[dir.join(".venv/bin/componentize-py")],
                "componentize-py",
            )
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "componentize-py not found. Install the pinned version: `python3 -m venv \
                     .venv && .venv/bin/pip install componentize-py==0.25.1` in {} (found \
                     there), or pass --componentize-py PATH or set FERRY_COMPONENTIZE_PY, or put \
                     it on PATH. In Ferry's repository, scripts/build-guest-plugins installs it as \
                     target/toolchains/python/bin/componentize-py.",
                    dir.display()
                )
            })?;
            let mut cmd = Command::new(&tool);
            cmd.arg("-d")
                .arg(&wit)
                .arg("-w")
                .arg(world.wit_name())
                .args(["componentize", "app", "-p", ".", "-o"])
                .arg(std::path::absolute(&out)?)
                .env("PYTHONDONTWRITEBYTECODE", "1");
            run_tool(cmd.current_dir(dir), &tool)?;
        }
        Lang::Js => {
            let world = need_world()?;
            let mut cmd = match find_tool(
                componentize_js,
                &[dir.join("node_modules/.bin/componentize-js")],
                "componentize-js",
            ) {
                Some(tool) => Command::new(tool),
                // No fallback to npx: it asks the registry first and prints
                // its 404s before any useful word.
                None => bail!("{}", js_missing(dir)),
            };
            cmd.arg("--wit")
                .arg(&wit)
                .arg("--world-name")
                .arg(world.wit_name())
                .args(["--disable", "http", "fetch-event", "-o"])
                .arg(std::path::absolute(&out)?)
                .arg("app.js");
            let program = PathBuf::from(cmd.get_program());
            run_tool(cmd.current_dir(dir), &program)?;
        }
    }
    let build_time = started.elapsed();
    if !out.is_file() {
        bail!("the build produced no {}", out.display());
    }
    // The manifest (with the declared options) travels in the component.
    if let Ok(text) = std::fs::read_to_string(&manifest_path) {
        let mut bytes = std::fs::read(&out)?;
        crate::options::embed(&mut bytes, &text);
        std::fs::write(&out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
    }
    let runtime = Runtime::new(RuntimeOptions::default())?;
    let i = runtime.inspect(&out);
    print_inspection(&out, &i);
    if i.error.is_some() {
        return Ok(ExitCode::from(1));
    }
    if let (Some(want), Some(got)) = (world, i.world)
        && want.world() != got
    {
        eprintln!(
            "error: {} is {} but {} says world = \"{}\"",
            out.display(),
            got.with_article(),
            manifest_path.display(),
            want.wit_name()
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "built {} ({} plugin) in {:.1} s",
        out.display(),
        lang.as_str(),
        build_time.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn js_missing(dir: &Path) -> String {
    format!(
        "componentize-js not found. Install the pinned version: `npm install` in {} (the \
         package.json of `ferry plugin new` pins @bytecodealliance/componentize-js 0.23.0 and \
         @bytecodealliance/preview2-shim 0.25.0), or pass --componentize-js PATH or set \
         FERRY_COMPONENTIZE_JS, or put it on PATH. In Ferry's repository, \
         scripts/build-guest-plugins installs it as \
         target/toolchains/js/node_modules/.bin/componentize-js.",
        dir.display()
    )
}

/// The given tool, else the first of `local` that exists, else `name` on PATH.
fn find_tool(given: Option<PathBuf>, local: &[PathBuf], name: &str) -> Option<PathBuf> {
    if let Some(g) = given {
        // A bare name is looked up on PATH; a path is taken as it is.
        return if g.components().count() == 1 {
            which(g.to_str()?).or(Some(g))
        } else {
            Some(g)
        };
    }
    local
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .or_else(|| which(name))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn run_tool(cmd: &mut Command, tool: &Path) -> anyhow::Result<()> {
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !status.success() {
        bail!("{} failed ({status}); its errors are above", tool.display());
    }
    Ok(())
}

/// `cargo build --release --target wasm32-wasip2`, then copy the cdylib
/// component to `out`.
fn build_rust(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(std::path::absolute(dir.join("Cargo.toml"))?)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context(
            "cannot run cargo (Rust plugins need Rust 1.95+ and `rustup target add wasm32-wasip2`)",
        )?;
    let stdout = child.stdout.take().expect("piped");
    let mut artifact = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line?) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact"
            || !msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        {
            continue;
        }
        if let Some(f) = msg["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"))
        {
            artifact = Some(PathBuf::from(f));
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "cargo build failed ({status}); its errors are above (is the target installed? \
             `rustup target add wasm32-wasip2`)"
        );
    }
    let artifact = artifact.ok_or_else(|| {
        anyhow::anyhow!(
            "cargo built no .wasm component: Cargo.toml needs `[lib] crate-type = [\"cdylib\"]`"
        )
    })?;
    std::fs::copy(&artifact, out)
        .with_context(|| format!("cannot copy {} to {}", artifact.display(), out.display()))?;
    Ok(())
}
