//! The version of the plugin contract this host implements, read from the
//! WIT package itself (`wit/ferry.wit`, compiled into the binary), and the
//! compatibility rule the loader enforces. Nothing else in the host writes a
//! version number of the contract.
//!
//! The rule (also written at the top of `wit/ferry.wit`): while Ferry is
//! 0.x a minor version is a major one. A plugin built against `0.2.y` runs
//! natively on a host implementing `0.2.x` when `y <= x` (a patch adds
//! functions; a plugin importing one its host lacks is refused at load by
//! the linker, naming the function); a plugin built against `0.1.y`
//! runs through the host's 0.1 adapter layer (one document per call, the
//! configuration served by the old `config` imports); any other version is
//! refused at load with what to rebuild it against.

use std::sync::LazyLock;

/// The WIT package every Ferry export and import belongs to.
pub const PACKAGE: &str = "ferry:plugin";

/// The text of the contract this host implements.
pub const WIT: &str = include_str!("../../../wit/ferry.wit");

/// The text of the older contract the adapter layer serves.
pub const WIT_0_1: &str = include_str!("../../../wit/legacy/0.1.0/ferry.wit");

static VERSION: LazyLock<String> = LazyLock::new(|| package_version(WIT));
static LEGACY: LazyLock<String> = LazyLock::new(|| package_version(WIT_0_1));

/// The version of `ferry:plugin` this host implements, e.g. `0.2.1`.
pub fn version() -> &'static str {
    &VERSION
}

/// The version of the older contract the host still serves, e.g. `0.1.0`.
pub fn legacy_version() -> &'static str {
    &LEGACY
}

/// The version in a WIT text's `package ferry:plugin@X;` line.
///
/// # Panics
///
/// When the text has no such line: the WIT compiled into the host is
/// broken, which the unit tests catch.
fn package_version(wit: &str) -> String {
    wit.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("package ")?
                .strip_suffix(';')?
                .strip_prefix(PACKAGE)?
                .strip_prefix('@')
                .map(str::to_string)
        })
        .expect("the WIT package declares `package ferry:plugin@VERSION;`")
}

/// Which contract a plugin's import or export of `ferry:plugin` is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Contract {
    /// The version this host implements (same major.minor).
    Current,
    /// The 0.1 contract, served through the adapter layer.
    Legacy,
}

/// `major.minor` of a version while the major is 0, else `major`: the part
/// that must be equal for two versions to be compatible.
fn compatibility_key(version: &str) -> Option<&str> {
    let mut parts = version.splitn(3, '.');
    let major = parts.next()?;
    let minor = parts.next()?;
    if major.parse::<u32>().is_err() || minor.parse::<u32>().is_err() {
        return None;
    }
    Some(if major == "0" {
        &version[..major.len() + 1 + minor.len()]
    } else {
        major
    })
}

/// Apply the compatibility rule to the version of one `ferry:plugin` name a
/// plugin imports or exports: which contract it is from, or why it is
/// refused (saying what to do).
pub fn classify(name: &str, version: Option<&str>) -> Result<Contract, String> {
    let current = version_key(self::version());
    let legacy = version_key(legacy_version());
    match version.and_then(compatibility_key) {
        Some(k) if Some(k) == current => Ok(Contract::Current),
        Some(k) if Some(k) == legacy => Ok(Contract::Legacy),
        _ => Err(format!(
            "it uses {name}, but this host implements {PACKAGE}@{} (and runs plugins built \
             against {PACKAGE}@{} through its adapter layer); rebuild the plugin against the \
             WIT shipped with this Ferry (`wit/ferry.wit`; for Rust, the plugin-sdk of this \
             Ferry; `ferry plugin build` for projects made by `ferry plugin new`)",
            self::version(),
            legacy_version()
        )),
    }
}

fn version_key(v: &str) -> Option<&str> {
    compatibility_key(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_the_wit_package() {
        assert!(WIT.contains(&format!("package {PACKAGE}@{};", version())));
        assert!(WIT_0_1.contains(&format!("package {PACKAGE}@{};", legacy_version())));
        assert_ne!(
            compatibility_key(version()),
            compatibility_key(legacy_version())
        );
    }

    #[test]
    fn the_rule_same_minor_while_major_is_zero() {
        let cur = version();
        let (maj_min, _) = cur.rsplit_once('.').unwrap();
        assert_eq!(classify("x", Some(cur)), Ok(Contract::Current));
        assert_eq!(
            classify("x", Some(&format!("{maj_min}.99"))),
            Ok(Contract::Current)
        );
        assert_eq!(classify("x", Some("0.1.0")), Ok(Contract::Legacy));
        assert_eq!(classify("x", Some("0.1.7")), Ok(Contract::Legacy));
        for refused in [None, Some("0.9.0"), Some("1.0.0"), Some("0"), Some("x.y.z")] {
            let e = classify("ferry:plugin/rule", refused).unwrap_err();
            assert!(e.contains("rebuild"), "{e}");
            assert!(e.contains(version()), "{e}");
        }
        assert_eq!(compatibility_key("1.4.2"), Some("1"));
        assert_eq!(compatibility_key("0.2.3"), Some("0.2"));
    }
}
