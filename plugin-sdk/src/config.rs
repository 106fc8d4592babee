//! The plugin's configuration: the options its port (or service) gives it
//! in the host's configuration file, read-only. The host gives it once per
//! instance (its world's `init`); the SDK keeps it, hands it to your plugin's
//! `new` as a [`Config`], and serves the free functions here from it, so
//! reading an option never calls the host.
//!
//! The host passes options as flat key/value pairs. A TOML table given as an
//! option reaches the plugin either flattened (`map = { "EXT-1" = "1000" }`
//! arrives as the key `map.EXT-1` with the value `1000`) or as one key whose
//! value is the table's TOML text; [`table`] reads both forms.
//!
//! Configuration problems are the plugin's environment's fault, so the
//! helpers here report them as [`PluginError::Failed`], naming the option.

use crate::{Direction, Level, PluginError};
use std::cell::RefCell;
use std::fmt::Display;
use std::rc::Rc;
use std::str::FromStr;

/// What the host gave this instance at `init`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The port the instance works for.
    pub port: String,
    /// The port's direction.
    pub direction: Direction,
    /// The plugin's options, as key/value pairs sorted by key.
    pub options: Vec<(String, String)>,
    /// The most verbose level the host writes this plugin's records at
    /// (`None`: none).
    pub log_level: Option<Level>,
    /// The outbound ports a service may send to.
    pub outbound_ports: Vec<String>,
}

impl Default for Config {
    /// No port, no options, every level written (what native tests get).
    fn default() -> Self {
        Config {
            port: String::new(),
            direction: Direction::Inbound,
            options: Vec::new(),
            log_level: Some(Level::Trace),
            outbound_ports: Vec::new(),
        }
    }
}

impl From<crate::bindings::ferry::plugin::types::Configuration> for Config {
    fn from(c: crate::bindings::ferry::plugin::types::Configuration) -> Self {
        Config {
            port: c.port,
            direction: c.direction,
            options: c.options,
            log_level: c.log_level,
            outbound_ports: c.outbound_ports,
        }
    }
}

impl Config {
    /// One option, or `None` when it is not set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// One option, or `default` when it is not set.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// One option parsed with [`FromStr`]; `Ok(None)` when it is not set,
    /// `failed` naming the option when it does not parse.
    pub fn get_parsed<T>(&self, key: &str) -> Result<Option<T>, PluginError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(key).map(|v| parse_value(key, v)).transpose()
    }

    /// A boolean option, `default` when not set.
    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool, PluginError> {
        self.get(key).map_or(Ok(default), |v| parse_bool(key, v))
    }

    /// A comma-separated list option, empty when not set.
    pub fn get_list(&self, key: &str) -> Vec<String> {
        self.get(key).map(split_list).unwrap_or_default()
    }

    /// A table option (see [`table`]).
    pub fn table(&self, name: &str) -> Result<Vec<(String, String)>, PluginError> {
        table_from(&self.options, name)
    }
}

thread_local! {
    static CURRENT: RefCell<Rc<Config>> = RefCell::new(Rc::new(Config::default()));
}

/// The configuration `init` gave this instance.
pub fn current() -> Rc<Config> {
    CURRENT.with_borrow(Rc::clone)
}

/// Keep `config` as this instance's configuration.
pub(crate) fn set(config: Config) {
    CURRENT.with_borrow_mut(|c| *c = Rc::new(config));
}

/// Whether records of `level` are written, by the level `init` gave.
pub(crate) fn writes(level: Level) -> bool {
    fn rank(l: Level) -> u8 {
        match l {
            Level::Trace => 0,
            Level::Debug => 1,
            Level::Info => 2,
            Level::Warn => 3,
            Level::Error => 4,
        }
    }
    CURRENT.with_borrow(|c| c.log_level.is_some_and(|min| rank(level) >= rank(min)))
}

/// All options, as key/value pairs sorted by key.
pub fn config() -> Vec<(String, String)> {
    current().options.clone()
}

/// One option, or `None` when it is not set.
pub fn config_get(key: &str) -> Option<String> {
    current().get(key).map(str::to_string)
}

/// One option, or `default` when it is not set.
pub fn get_or(key: &str, default: &str) -> String {
    config_get(key).unwrap_or_else(|| default.to_string())
}

/// One option parsed with [`FromStr`] (numbers and the like); `Ok(None)` when
/// it is not set, `failed` naming the option when it does not parse.
pub fn get_parsed<T>(key: &str) -> Result<Option<T>, PluginError>
where
    T: FromStr,
    T::Err: Display,
{
    match config_get(key) {
        None => Ok(None),
        Some(v) => parse_value(key, &v).map(Some),
    }
}

/// Parse the value `value` of option `key`, naming both on error.
pub fn parse_value<T>(key: &str, value: &str) -> Result<T, PluginError>
where
    T: FromStr,
    T::Err: Display,
{
    value
        .trim()
        .parse()
        .map_err(|e| PluginError::Failed(format!("option `{key}` = {value:?} is not valid: {e}")))
}

/// A yes/no option: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0` (any
/// case); `default` when it is not set, `failed` for anything else.
pub fn get_bool(key: &str, default: bool) -> Result<bool, PluginError> {
    match config_get(key) {
        None => Ok(default),
        Some(v) => parse_bool(key, &v),
    }
}

/// Parse a yes/no value of option `key` (see [`get_bool`]).
pub fn parse_bool(key: &str, value: &str) -> Result<bool, PluginError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(PluginError::Failed(format!(
            "option `{key}` = {value:?} is not valid: expected true or false"
        ))),
    }
}

/// A comma-separated list option (`"CustAccount, ItemId"`), items trimmed,
/// empty items dropped; empty when the option is not set.
pub fn get_list(key: &str) -> Vec<String> {
    config_get(key).map(|v| split_list(&v)).unwrap_or_default()
}

/// Split a comma-separated list, trimming items and dropping empty ones.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The table option `name`, as key/value pairs in configuration order.
///
/// Reads both forms the host may use: flattened keys `name.<key>` (the key
/// is everything after `name.`, dots included), and a single key `name`
/// whose value is the table as TOML text (`{ "A" = "1", B = "2" }` or
/// `A = "1"` lines). Empty when the option is not set.
pub fn table(name: &str) -> Result<Vec<(String, String)>, PluginError> {
    table_from(&config(), name)
}

/// [`table`] over the given options instead of the host's.
pub fn table_from(
    options: &[(String, String)],
    name: &str,
) -> Result<Vec<(String, String)>, PluginError> {
    let prefix = format!("{name}.");
    let mut out = Vec::new();
    for (k, v) in options {
        if let Some(rest) = k.strip_prefix(&prefix) {
            out.push((rest.to_string(), v.clone()));
        } else if k == name {
            let parsed = parse_toml_table(v).map_err(|e| {
                PluginError::Failed(format!("option `{name}` is not a table of values: {e}"))
            })?;
            out.extend(parsed);
        }
    }
    Ok(out)
}

/// Parse the TOML text of a flat table of scalar values: either an inline
/// table `{ "EXT-1" = "1000", B = 2 }` or `key = value` lines. Strings are
/// unquoted and unescaped; other scalars (numbers, booleans, dates) are kept
/// as written. Nested tables and arrays are an error.
pub fn parse_toml_table(text: &str) -> Result<Vec<(String, String)>, String> {
    let trimmed = text.trim();
    let body = match trimmed.strip_prefix('{') {
        Some(rest) => rest
            .strip_suffix('}')
            .ok_or_else(|| "an inline table must end with `}`".to_string())?,
        None => trimmed,
    };
    let mut p = TomlParser {
        chars: body.chars().collect(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_separators();
        if p.at_end() {
            break;
        }
        let mut key = p.key()?;
        p.skip_blanks();
        while p.peek() == Some('.') {
            p.pos += 1;
            p.skip_blanks();
            key.push('.');
            key.push_str(&p.key()?);
            p.skip_blanks();
        }
        if p.peek() != Some('=') {
            return Err(format!("expected `=` after key {key:?}"));
        }
        p.pos += 1;
        p.skip_blanks();
        let value = p.value()?;
        out.push((key, value));
    }
    Ok(out)
}

struct TomlParser {
    chars: Vec<char>,
    pos: usize,
}

impl TomlParser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    /// Skip whitespace, newlines, commas and comments between entries.
    fn skip_separators(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' | ',' => self.pos += 1,
                '#' => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn key(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('"') => self.basic_string(),
            Some('\'') => self.literal_string(),
            _ => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    self.pos += 1;
                }
                if start == self.pos {
                    return Err(format!("expected a key at {:?}", self.rest()));
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
        }
    }

    fn value(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('"') => self.basic_string(),
            Some('\'') => self.literal_string(),
            Some('{' | '[') => Err("nested tables and arrays are not supported".to_string()),
            None => Err("missing value".to_string()),
            _ => {
                let start = self.pos;
                while !matches!(self.peek(), None | Some(',' | '\n' | '#')) {
                    self.pos += 1;
                }
                let raw: String = self.chars[start..self.pos].iter().collect();
                let raw = raw.trim().to_string();
                if raw.is_empty() {
                    return Err("missing value".to_string());
                }
                Ok(raw)
            }
        }
    }

    fn rest(&self) -> String {
        self.chars[self.pos..].iter().take(20).collect()
    }

    fn literal_string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '\'' {
                let s = self.chars[start..self.pos].iter().collect();
                self.pos += 1;
                return Ok(s);
            }
            if c == '\n' {
                break;
            }
            self.pos += 1;
        }
        Err("unterminated string".to_string())
    }

    fn basic_string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut s = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '"' => return Ok(s),
                '\n' => break,
                '\\' => {
                    let e = self.peek().ok_or("unterminated string")?;
                    self.pos += 1;
                    match e {
                        'b' => s.push('\u{8}'),
                        't' => s.push('\t'),
                        'n' => s.push('\n'),
                        'f' => s.push('\u{c}'),
                        'r' => s.push('\r'),
                        'e' => s.push('\u{1b}'),
                        '"' => s.push('"'),
                        '\\' => s.push('\\'),
                        'u' | 'U' => {
                            let n = if e == 'u' { 4 } else { 8 };
                            let hex: String = self
                                .chars
                                .get(self.pos..self.pos + n)
                                .ok_or("bad escape")?
                                .iter()
                                .collect();
                            self.pos += n;
                            let ch = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| format!("bad escape \\{e}{hex}"))?;
                            s.push(ch);
                        }
                        other => return Err(format!("bad escape \\{other}")),
                    }
                }
                c => s.push(c),
            }
        }
        Err("unterminated string".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn inline_table() {
        let t = parse_toml_table(r#"{ "EXT-001" = "1000", B = 'x', n = 3, "a.b" = "q\"\u00e9" }"#)
            .unwrap();
        assert_eq!(
            t,
            pairs(&[("EXT-001", "1000"), ("B", "x"), ("n", "3"), ("a.b", "q\"é")])
        );
    }

    #[test]
    fn table_lines_with_comments() {
        let t = parse_toml_table("# mapping\n\"EXT-001\" = \"1000\" # first\nEXT-002 = \"2000\"\n")
            .unwrap();
        assert_eq!(t, pairs(&[("EXT-001", "1000"), ("EXT-002", "2000")]));
    }

    #[test]
    fn bad_tables() {
        assert!(parse_toml_table("{ a = ").is_err());
        assert!(parse_toml_table("a = { b = 1 }").is_err());
        assert!(parse_toml_table("a = \"open").is_err());
        assert!(parse_toml_table("= 1").is_err());
    }

    #[test]
    fn table_from_both_forms() {
        let opts = pairs(&[
            ("elements", "ItemId"),
            ("map.EXT-001", "1000"),
            ("map.EXT.2", "2000"),
            ("mapping.X", "no"),
            ("map", "{ C = \"3000\" }"),
        ]);
        let t = table_from(&opts, "map").unwrap();
        assert_eq!(
            t,
            pairs(&[("EXT-001", "1000"), ("EXT.2", "2000"), ("C", "3000")])
        );
        assert!(table_from(&opts, "absent").unwrap().is_empty());
        let bad = pairs(&[("map", "{ C = [1] }")]);
        let e = table_from(&bad, "map").unwrap_err();
        assert!(
            matches!(e, PluginError::Failed(ref r) if r.contains("`map`")),
            "{e:?}"
        );
    }

    #[test]
    fn values_and_lists() {
        assert_eq!(parse_value::<u64>("max", " 12 ").unwrap(), 12);
        let e = parse_value::<u64>("max_file_size", "ten").unwrap_err();
        assert!(e.reason().contains("max_file_size") && e.reason().contains("ten"));
        assert!(parse_bool("strict", "TRUE").unwrap());
        assert!(!parse_bool("strict", "no").unwrap());
        assert!(parse_bool("strict", "maybe").is_err());
        assert_eq!(split_list(" A, B ,,C "), vec!["A", "B", "C"]);
    }
}
