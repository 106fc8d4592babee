//! A client of a running host's control API, as an operator's script
//! would be: the address from `DATA_DIR/console/host.json`, the operator's
//! token from `DATA_DIR/console/operator.token`.

use std::path::Path;
use std::time::Duration;

/// The running host whose data directory this is.
pub struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    /// The host serving `data` (panics when it serves nothing yet).
    pub fn new(data: &Path) -> Api {
        let console = data.join("console");
        let host: serde_json::Value =
            serde_json::from_slice(&std::fs::read(console.join("host.json")).unwrap()).unwrap();
        Api {
            base: host["url"].as_str().unwrap().to_string(),
            token: std::fs::read_to_string(console.join("operator.token"))
                .unwrap()
                .trim()
                .to_string(),
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        }
    }

    /// `GET path` with the token: its JSON (panics unless 2xx).
    pub fn get(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.text(path)).unwrap()
    }

    /// `GET path` with the token, as text (panics unless 2xx).
    pub fn text(&self, path: &str) -> String {
        self.fetch(path, "Authorization", &format!("Bearer {}", self.token))
    }

    /// `GET path` of the console, logged in as the operator (panics unless
    /// 2xx): the page's HTML.
    pub fn page(&self, path: &str) -> String {
        self.fetch(path, "Cookie", &format!("ferry_console={}", self.token))
    }

    fn fetch(&self, path: &str, header: &str, value: &str) -> String {
        self.agent
            .get(format!("{}{path}", self.base))
            .header(header, value)
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .body_mut()
            .read_to_string()
            .unwrap()
    }
}
