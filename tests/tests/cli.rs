//! The real `ferry` binary: help and version, `plugin check|list` on good
//! and bad files, and `check` on good and bad configurations.

use ferry_tests::{Run, plugin, plugins_dir, run};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temporary path")
}

/// `ferry plugin check FILE`, expected to refuse it: exit 1 or 2, no panic,
/// a status line saying REFUSED, and each of `expected` somewhere.
fn check_refuses(file: &Path, expected: &[&str]) -> Run {
    let r = run(&["plugin", "check", path_str(file)]);
    assert!(matches!(r.code, Some(1 | 2)), "{}:\n{r}", file.display());
    assert!(r.both().contains("REFUSED"), "{}:\n{r}", file.display());
    for word in expected {
        assert!(r.both().contains(word), "{word:?} missing:\n{r}");
    }
    r
}

fn sha256_hex(file: &Path) -> String {
    let digest = Sha256::digest(std::fs::read(file).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `len` deterministic pseudo-random bytes (xorshift64*).
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn help_lists_the_commands() {
    let r = run(&["--help"]);
    assert_eq!(r.code, Some(0), "{r}");
    for command in ["run", "check", "plugin", "queue"] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "command {command} not listed:\n{r}"
        );
    }
    assert!(r.stdout.contains("Usage: ferry"), "{r}");
}

#[test]
fn version_prints_the_package_version() {
    let r = run(&["--version"]);
    assert_eq!(r.code, Some(0), "{r}");
    assert_eq!(
        r.stdout.trim(),
        format!("ferry {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn plugin_check_describes_good_components() {
    for (name, world, exports, import) in [
        (
            "value-map",
            "rule",
            &["ferry:plugin/rule@0.2.1", "init"][..],
            "ferry:plugin/documents@0.2.1",
        ),
        (
            "file-adapter",
            "adapter",
            &["ferry:plugin/receive@0.2.1", "ferry:plugin/send@0.2.1"][..],
            "ferry:plugin/files@0.2.1",
        ),
        (
            "sales-order-service",
            "service",
            &["ferry:plugin/service@0.2.1", "init"][..],
            "ferry:plugin/host@0.2.1",
        ),
    ] {
        let file = plugin(name);
        let r = run(&["plugin", "check", path_str(&file)]);
        assert_eq!(r.code, Some(0), "{name}:\n{r}");
        let out = &r.stdout;
        assert!(out.contains(&format!("plugin:  {name}\n")), "{r}");
        assert!(
            out.contains(&format!("world:   {world} (ferry:plugin@0.2.1)")),
            "{r}"
        );
        assert!(
            out.contains(&format!("sha256:  {}\n", sha256_hex(&file))),
            "{r}"
        );
        let section = |title: &str| -> Vec<String> {
            out.split(&format!("{title}:\n"))
                .nth(1)
                .unwrap_or_else(|| panic!("no {title} section:\n{r}"))
                .lines()
                .take_while(|l| l.starts_with("  "))
                .map(|l| l.trim().to_string())
                .collect()
        };
        let got_exports = section("exports");
        for e in exports {
            assert!(got_exports.iter().any(|x| x == e), "{e} not exported:\n{r}");
        }
        let imports = section("imports");
        assert!(imports.iter().any(|i| i == import), "{import}:\n{r}");
        assert!(
            imports.iter().any(|i| i.starts_with("wasi:")),
            "WASI imports listed:\n{r}"
        );
        assert!(out.contains("status:  ok"), "{r}");
    }
}

#[test]
fn plugin_check_refuses_a_core_module() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("core.wasm");
    // The smallest valid core module: magic and version 1.
    std::fs::write(&file, b"\0asm\x01\0\0\0").unwrap();
    check_refuses(&file, &["core WebAssembly module", "wasm32-wasip2"]);
}

#[test]
fn plugin_check_refuses_random_bytes() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("random.wasm");
    let bytes = pseudo_random(4096);
    assert_ne!(&bytes[..4], b"\0asm");
    std::fs::write(&file, &bytes).unwrap();
    let r = check_refuses(
        &file,
        &["random is not a WebAssembly component", "magic bytes"],
    );
    assert!(r.stdout.contains(&sha256_hex(&file)), "{r}");
}

#[test]
fn plugin_check_refuses_a_component_header_followed_by_garbage() {
    let dir = TempDir::new().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.extend(pseudo_random(4096));
    std::fs::write(&garbage, &bytes).unwrap();
    check_refuses(&garbage, &["does not compile"]);
    // A real component cut in half.
    let truncated = dir.path().join("truncated.wasm");
    let whole = std::fs::read(plugin("value-map")).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    check_refuses(&truncated, &["does not compile"]);
}

#[test]
fn plugin_check_refuses_an_empty_file() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("empty.wasm");
    std::fs::write(&file, b"").unwrap();
    check_refuses(&file, &["(0 bytes)", "not a WebAssembly component"]);
}

#[test]
fn plugin_check_refuses_a_missing_file() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("missing.wasm");
    check_refuses(
        &file,
        &["cannot read plugin", path_str(&file), "No such file"],
    );
}

#[test]
fn plugin_check_refuses_a_component_of_another_world() {
    let file = plugin("test-wrong-world");
    let r = check_refuses(&file, &["does not target a Ferry world", "greet"]);
    assert!(r.stdout.contains("world:   none"), "{r}");
    assert!(r.stdout.contains(&sha256_hex(&file)), "{r}");
}

#[test]
fn plugin_list_shows_every_file_and_fails_on_junk() {
    let dir = TempDir::new().unwrap();
    for name in ["value-map", "file-adapter"] {
        std::fs::copy(plugin(name), dir.path().join(format!("{name}.wasm"))).unwrap();
    }
    std::fs::write(dir.path().join("junk.wasm"), pseudo_random(4096)).unwrap();
    let r = run(&["plugin", "list", path_str(dir.path())]);
    assert_eq!(r.code, Some(1), "the junk file fails the listing:\n{r}");
    let rows: Vec<Vec<&str>> = r
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["PLUGIN", "WORLD", "SHA256", "STATUS"], "{r}");
    let row = |name: &str| {
        rows.iter()
            .find(|cols| cols[0] == name)
            .unwrap_or_else(|| panic!("{name} not listed:\n{r}"))
            .clone()
    };
    for (name, world) in [("file-adapter", "adapter"), ("value-map", "rule")] {
        let cols = row(name);
        let hash = sha256_hex(&dir.path().join(format!("{name}.wasm")));
        assert_eq!(cols[1..], [world, &hash[..12], "ok"], "{r}");
    }
    let junk = row("junk");
    let hash = sha256_hex(&dir.path().join("junk.wasm"));
    assert_eq!(junk[1..4], ["-", &hash[..12], "refused:"], "{r}");
    assert!(
        r.stdout.contains("not a WebAssembly component"),
        "the reason is shown:\n{r}"
    );
    assert_eq!(rows.len(), 4, "a header and three plugins:\n{r}");
}

/// A temporary folder holding `ferry.toml` with `text`.
fn config(text: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("ferry.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// A valid configuration using the shipped plugins. Its line numbers matter
/// to the tests below.
fn good_config() -> String {
    format!(
        r#"data_dir = "data"
plugin_dir = '{}'

[adapters.file]
component = "file-adapter"
options = {{ max_file_size = 1000 }}

[rules.item-ids]
component = "value-map"
options = {{ elements = "ItemId", map = {{ "EXT-1" = "1000" }} }}

[services.sales]
component = "sales-order-service"

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
pipeline = ["item-ids"]
services = [{{ action = "*/SalesOrderService/*", service = "sales" }}]
"#,
        path_str(&plugins_dir())
    )
}

#[test]
fn check_accepts_a_valid_config_and_lists_its_plugins() {
    let (dir, file) = config(&good_config());
    let r = run(&["check", "--config", path_str(&file)]);
    assert_eq!(r.code, Some(0), "{r}");
    assert!(
        r.stdout
            .contains(&format!("configuration {} is valid", file.display())),
        "{r}"
    );
    for (world, name) in [
        ("adapter", "file-adapter"),
        ("rule", "value-map"),
        ("service", "sales-order-service"),
    ] {
        let hash = sha256_hex(&plugin(name));
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{r}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cols,
            [world, name, &format!("sha256:{}", &hash[..12])],
            "{r}"
        );
    }
    assert!(r.stdout.contains("1 port(s)"), "{r}");
    // Paths are relative to the configuration file.
    assert!(
        r.stdout.contains(&format!(
            "data directory {}",
            dir.path().join("data").display()
        )),
        "{r}"
    );
}

#[test]
fn check_reports_an_unknown_key_with_file_and_line() {
    // Line 18 has `adress` for `address`.
    let text = good_config().replace("address = \"inbox\"", "adress = \"inbox\"");
    assert_eq!(text.lines().nth(17), Some("adress = \"inbox\""));
    let (_dir, file) = config(&text);
    let r = run(&["check", "--config", path_str(&file)]);
    assert_eq!(r.code, Some(2), "{r}");
    let expected = format!(
        "{}:18: ports.in.adress: unknown field `adress`",
        file.display()
    );
    assert!(r.stderr.contains(&expected), "{expected:?} missing:\n{r}");
    // And says what is allowed.
    assert!(r.stderr.contains("`address`"), "{r}");
}

#[test]
fn check_reports_a_missing_rule_with_line_and_key() {
    // Line 20 names a rule that is not defined.
    let text = good_config().replace(
        "pipeline = [\"item-ids\"]",
        "pipeline = [\"item-ids\", \"no-such-rule\"]",
    );
    assert!(text.lines().nth(19).unwrap().contains("no-such-rule"));
    let (_dir, file) = config(&text);
    let r = run(&["check", "--config", path_str(&file)]);
    assert_eq!(r.code, Some(2), "{r}");
    let expected = format!(
        "{}:20: ports.in.pipeline: no rule named \"no-such-rule\"",
        file.display()
    );
    assert!(r.stderr.contains(&expected), "{expected:?} missing:\n{r}");
    assert!(!r.stdout.contains("is valid"), "{r}");
}

#[test]
fn check_reports_every_plugin_that_cannot_serve_its_use() {
    // A service plugin used as the adapter, and a plugin that does not exist.
    let text = good_config()
        .replace("component = \"file-adapter\"", "component = \"test-probe\"")
        .replace(
            "component = \"sales-order-service\"",
            "component = \"no-such-plugin\"",
        );
    let (_dir, file) = config(&text);
    let r = run(&["check", "--config", path_str(&file)]);
    assert_eq!(r.code, Some(2), "{r}");
    assert!(
        r.stderr.contains("test-probe") && r.stderr.contains("is a service plugin"),
        "{r}"
    );
    assert!(r.stderr.contains("no-such-plugin.wasm"), "{r}");
    assert!(!r.stdout.contains("is valid"), "{r}");
}

#[test]
fn check_refuses_a_rule_plugin_as_adapter_even_when_it_is_also_a_rule() {
    // value-map is used correctly as a rule, and wrongly as the adapter:
    // every receive through that adapter would fail at run time.
    let text = good_config().replace("component = \"file-adapter\"", "component = \"value-map\"");
    let (_dir, file) = config(&text);
    let r = run(&["check", "--config", path_str(&file)]);
    assert_eq!(r.code, Some(2), "{r}");
    assert!(
        r.stderr.contains("value-map") && r.stderr.contains("is a rule plugin"),
        "{r}"
    );
}

#[test]
fn plugin_check_says_a_0_1_plugin_runs_through_the_adapter_layer() {
    let file = ferry_tests::plugin_0_1("value-map");
    let r = run(&["plugin", "check", path_str(&file)]);
    assert_eq!(r.code, Some(0), "{r}");
    assert!(
        r.stdout.contains(
            "world:   rule (ferry:plugin@0.1.0, run through the adapter layer: rebuild against \
             ferry:plugin@0.2.1 for batches)"
        ),
        "{r}"
    );
    assert!(r.stdout.contains("ferry:plugin/rule@0.1.0"), "{r}");
    assert!(r.stdout.contains("status:  ok"), "{r}");
}
