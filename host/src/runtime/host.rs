//! The state of one wasmtime `Store` ([`HostState`]) and the host side of
//! every interface plugins import: `host`, `documents` and `files` of the
//! contract this host implements, and `host` and `send-api` of the 0.1
//! contract its adapter layer serves.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::StoreLimits;
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{adapter, rule, v01};
use super::document::{Batch, DocRef, Entry};
use super::files::{self, FileError, Grants, WriteMode};
use super::quota::{self, LogBucket, QuotaExceeded};
use super::{Level, PluginError, SandboxConfig, SentDocument};

/// The state of one wasmtime `Store`.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: StoreLimits,
    pub(super) plugin: String,
    pub(super) hash: String,
    pub(super) setup: Arc<SandboxConfig>,
    /// Documents sent through the 0.1 Send API during the current call.
    pub(super) sent: Vec<SentDocument>,
    /// Bytes of `sent`.
    pub(super) sent_bytes: u64,
    /// Log records written during the current call.
    pub(super) logged: u32,
    /// Log records the current call may write (the quota per item times
    /// the items of the batch).
    pub(super) log_allowance: u32,
    /// The plugin's log rate limiter on this port.
    pub(super) log_bucket: Arc<Mutex<LogBucket>>,
    /// The documents of the rule call in progress.
    pub(super) batch: Batch,
    /// The granted folders, for the files interface.
    pub(super) grants: Grants,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The most verbose level the host writes plugin records at now, if any.
pub fn log_level() -> Option<Level> {
    use tracing::Level as T;
    [
        (T::TRACE, Level::Trace),
        (T::DEBUG, Level::Debug),
        (T::INFO, Level::Info),
        (T::WARN, Level::Warn),
        (T::ERROR, Level::Error),
    ]
    .into_iter()
    .find(|(t, _)| enabled(*t))
    .map(|(_, l)| l)
}

fn enabled(level: tracing::Level) -> bool {
    use tracing::Level as T;
    match level {
        T::TRACE => tracing::enabled!(target: "ferry::plugin", T::TRACE),
        T::DEBUG => tracing::enabled!(target: "ferry::plugin", T::DEBUG),
        T::INFO => tracing::enabled!(target: "ferry::plugin", T::INFO),
        T::WARN => tracing::enabled!(target: "ferry::plugin", T::WARN),
        T::ERROR => tracing::enabled!(target: "ferry::plugin", T::ERROR),
    }
}

fn tracing_level(level: Level) -> tracing::Level {
    match level {
        Level::Trace => tracing::Level::TRACE,
        Level::Debug => tracing::Level::DEBUG,
        Level::Info => tracing::Level::INFO,
        Level::Warn => tracing::Level::WARN,
        Level::Error => tracing::Level::ERROR,
    }
}

impl HostState {
    /// Count a log record the host would write against the call's quota,
    /// then ask the plugin's rate limiter: `Ok(true)` to write it (after
    /// reporting the records dropped before it), `Ok(false)` when it is
    /// dropped, `Err` when the call reached its quota.
    fn admit_log(&mut self) -> wasmtime::Result<bool> {
        let q = &self.setup.limits.quotas;
        self.logged += 1;
        if self.logged > self.log_allowance {
            return Err(QuotaExceeded::new(
                format_args!(
                    "wrote more than {} log records in one call ({} per item)",
                    self.log_allowance, q.log_records
                ),
                "max_log_records",
                q.log_records,
                &self.setup.port,
            )
            .into());
        }
        let admitted = self
            .log_bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(q.log_rate, Instant::now());
        match admitted {
            Ok(dropped) => {
                self.report_dropped(dropped);
                Ok(true)
            }
            Err(()) => Ok(false),
        }
    }

    /// The one line that says how many of this plugin's log records the
    /// rate limiter dropped.
    pub(super) fn report_dropped(&self, dropped: u64) {
        if dropped > 0 {
            let (plugin, hash, port) = (&self.plugin, &self.hash[..12], &self.setup.port);
            tracing::warn!(
                target: "ferry::plugin",
                plugin, hash, port,
                "{dropped} log records of this plugin dropped: it logged faster than its rate \
                 (`log_rate` = {}/s on the port)",
                self.setup.limits.quotas.log_rate
            );
        }
    }

    /// Write a plugin's log record (both contracts).
    fn log_record(
        &mut self,
        level: tracing::Level,
        message: &str,
        fields: &[(String, String)],
    ) -> wasmtime::Result<()> {
        // Records filtered out cost nothing more than the call: they are
        // neither counted nor formatted.
        if !enabled(level) || !self.admit_log()? {
            return Ok(());
        }
        let max = self.setup.limits.quotas.log_record_bytes;
        let fields = fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let fields = quota::cut(&fields, max.saturating_sub(message.len().min(max)));
        let message = quota::cut(message, max);
        let (plugin, hash, port) = (&self.plugin, &self.hash[..12], &self.setup.port);
        macro_rules! emit {
            ($lvl:expr) => {
                tracing::event!(target: "ferry::plugin", $lvl, plugin, hash, port, %fields, "{message}")
            };
        }
        use tracing::Level as T;
        match level {
            T::TRACE => emit!(T::TRACE),
            T::DEBUG => emit!(T::DEBUG),
            T::INFO => emit!(T::INFO),
            T::WARN => emit!(T::WARN),
            T::ERROR => emit!(T::ERROR),
        }
        Ok(())
    }

    fn entry(&self, doc: &Resource<DocRef>) -> wasmtime::Result<&Entry> {
        self.batch.get(doc.rep()).ok_or_else(|| {
            wasmtime::Error::msg("the plugin used a document of an earlier call, which has ended")
        })
    }

    /// The document to edit, if the edit keeps within the quota on what a
    /// rule hands back per document (`max_response_mb`).
    fn entry_to_edit(
        &mut self,
        doc: &Resource<DocRef>,
        adding: usize,
    ) -> wasmtime::Result<&mut Entry> {
        let q = self.setup.limits.quotas;
        let port = &self.setup.port;
        let entry = self.batch.get_mut(doc.rep()).ok_or_else(|| {
            wasmtime::Error::msg("the plugin used a document of an earlier call, which has ended")
        })?;
        if entry.held + adding as u64 > q.response_bytes {
            return Err(QuotaExceeded::new(
                format_args!(
                    "handed back more than {} MiB of text for document {}",
                    q.response_bytes >> 20,
                    entry.name()
                ),
                "max_response_mb",
                q.response_bytes >> 20,
                port,
            )
            .into());
        }
        Ok(entry)
    }
}

// ---- ferry:plugin@0.2 -------------------------------------------------

impl rule::ferry::plugin::types::Host for HostState {}

impl rule::ferry::plugin::host::Host for HostState {
    fn log(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.log_record(tracing_level(level), &message, &fields)
    }

    fn log_enabled(&mut self, level: Level) -> bool {
        enabled(tracing_level(level))
    }
}

use rule::ferry::plugin::documents::{self as docs};

impl docs::Host for HostState {}

impl docs::HostDocument for HostState {
    fn name(&mut self, doc: Resource<DocRef>) -> wasmtime::Result<String> {
        Ok(self.entry(&doc)?.name().to_string())
    }

    fn text(&mut self, doc: Resource<DocRef>) -> wasmtime::Result<String> {
        Ok(self.entry(&doc)?.text().to_string())
    }

    fn is_envelope(&mut self, doc: Resource<DocRef>) -> wasmtime::Result<bool> {
        Ok(self.entry(&doc)?.is_envelope())
    }

    fn header(
        &mut self,
        doc: Resource<DocRef>,
        field: String,
    ) -> wasmtime::Result<Result<Option<String>, String>> {
        Ok(self.entry(&doc)?.header(&field))
    }

    fn body(&mut self, doc: Resource<DocRef>) -> wasmtime::Result<Result<Option<String>, String>> {
        Ok(self.entry(&doc)?.body())
    }

    fn elements(
        &mut self,
        doc: Resource<DocRef>,
        name: String,
    ) -> wasmtime::Result<Result<Vec<docs::Element>, String>> {
        Ok(self.entry(&doc)?.elements(&name, false).map(views))
    }

    fn elements_anywhere(
        &mut self,
        doc: Resource<DocRef>,
        name: String,
    ) -> wasmtime::Result<Result<Vec<docs::Element>, String>> {
        Ok(self.entry(&doc)?.elements(&name, true).map(views))
    }

    fn path(&mut self, doc: Resource<DocRef>, id: u32) -> wasmtime::Result<Option<String>> {
        Ok(self.entry(&doc)?.path(id))
    }

    fn set_text(&mut self, doc: Resource<DocRef>, id: u32, text: String) -> wasmtime::Result<()> {
        self.entry_to_edit(&doc, text.len())?.set_text(id, text);
        Ok(())
    }

    fn set_header(
        &mut self,
        doc: Resource<DocRef>,
        field: String,
        value: String,
    ) -> wasmtime::Result<()> {
        self.entry_to_edit(&doc, field.len() + value.len())?
            .set_header(field, value);
        Ok(())
    }

    fn remove(&mut self, doc: Resource<DocRef>, id: u32) -> wasmtime::Result<()> {
        self.entry_to_edit(&doc, 0)?.remove(id);
        Ok(())
    }

    fn replace(&mut self, doc: Resource<DocRef>, text: String) -> wasmtime::Result<()> {
        self.entry_to_edit(&doc, text.len())?.replace(text);
        Ok(())
    }

    fn drop(&mut self, _doc: Resource<DocRef>) -> wasmtime::Result<()> {
        // A handle is an index into the call's batch: nothing to free.
        Ok(())
    }
}

fn views(v: Vec<super::document::ElementView>) -> Vec<docs::Element> {
    v.into_iter()
        .map(|e| docs::Element {
            id: e.id,
            text: e.text,
            start: e.start,
            end: e.end,
        })
        .collect()
}

use adapter::ferry::plugin::files as wit_files;

fn file_error(e: FileError) -> wit_files::FileError {
    match e {
        FileError::Denied(m) => wit_files::FileError::Denied(m),
        FileError::NotFound => wit_files::FileError::NotFound,
        FileError::TooLarge(n) => wit_files::FileError::TooLarge(n),
        FileError::NotAFile => wit_files::FileError::NotAFile,
        FileError::Io(m) => wit_files::FileError::Io(m),
    }
}

fn entry(e: files::Entry) -> wit_files::Entry {
    wit_files::Entry {
        name: e.name,
        kind: match e.kind {
            files::Kind::File => wit_files::Kind::File,
            files::Kind::Directory => wit_files::Kind::Directory,
            files::Kind::Symlink => wit_files::Kind::Symlink,
            files::Kind::Other => wit_files::Kind::Other,
        },
        size: e.size,
    }
}

impl HostState {
    /// `write` and `write-in-place`: one round trip for the batch.
    fn write_files(
        &self,
        files: &[wit_files::File],
        mode: WriteMode,
    ) -> Vec<Result<(), wit_files::FileError>> {
        self.grants
            .write_many(
                files
                    .iter()
                    .map(|f| (f.path.as_str(), f.content.as_slice())),
                mode,
            )
            .into_iter()
            .map(|r| r.map_err(file_error))
            .collect()
    }
}

impl wit_files::Host for HostState {
    fn list_folder(&mut self, path: String) -> Result<Vec<wit_files::Entry>, wit_files::FileError> {
        let entries = self.grants.list(&path).map_err(file_error)?;
        Ok(entries.into_iter().map(entry).collect())
    }

    fn stat(&mut self, paths: Vec<String>) -> Vec<Result<wit_files::Entry, wit_files::FileError>> {
        paths
            .iter()
            .map(|p| self.grants.stat(p).map(entry).map_err(file_error))
            .collect()
    }

    fn read(
        &mut self,
        paths: Vec<String>,
        max_size: u64,
    ) -> wasmtime::Result<Vec<Result<Vec<u8>, wit_files::FileError>>> {
        // What one call reads is held by the host until the guest has it:
        // bounded like a receive batch (`max_receive_mb`).
        let q = self.setup.limits.quotas;
        let mut total = 0u64;
        let mut out = Vec::with_capacity(paths.len());
        for p in &paths {
            let left = q.receive_bytes.saturating_sub(total);
            let r = self.grants.read(p, max_size.min(left));
            match &r {
                Ok(c) => total += c.len() as u64,
                Err(FileError::TooLarge(n)) if *n <= max_size => {
                    return Err(QuotaExceeded::new(
                        format_args!(
                            "read more than {} MiB of files in one call",
                            q.receive_bytes >> 20
                        ),
                        "max_receive_mb",
                        q.receive_bytes >> 20,
                        &self.setup.port,
                    )
                    .into());
                }
                Err(_) => {}
            }
            out.push(r.map_err(file_error));
        }
        Ok(out)
    }

    fn write(&mut self, files: Vec<wit_files::File>) -> Vec<Result<(), wit_files::FileError>> {
        self.write_files(&files, WriteMode::Atomic)
    }

    fn write_in_place(
        &mut self,
        files: Vec<wit_files::File>,
    ) -> Vec<Result<(), wit_files::FileError>> {
        self.write_files(&files, WriteMode::InPlace)
    }

    fn rename(&mut self, pairs: Vec<(String, String)>) -> Vec<Result<(), wit_files::FileError>> {
        pairs
            .iter()
            .map(|(a, b)| self.grants.rename(a, b).map_err(file_error))
            .collect()
    }

    fn remove(&mut self, paths: Vec<String>) -> Vec<Result<(), wit_files::FileError>> {
        paths
            .iter()
            .map(|p| self.grants.remove(p).map_err(file_error))
            .collect()
    }
}

// ---- ferry:plugin@0.1 (the adapter layer) -------------------------------

use v01::rule::ferry::plugin as p01;

impl p01::types::Host for HostState {}

impl p01::host::Host for HostState {
    fn log(
        &mut self,
        level: p01::types::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        use p01::types::Level as L;
        let level = match level {
            L::Trace => tracing::Level::TRACE,
            L::Debug => tracing::Level::DEBUG,
            L::Info => tracing::Level::INFO,
            L::Warn => tracing::Level::WARN,
            L::Error => tracing::Level::ERROR,
        };
        self.log_record(level, &message, &fields)
    }

    fn config(&mut self) -> Vec<(String, String)> {
        self.setup.config.clone()
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.setup
            .config
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }
}

impl v01::service::ferry::plugin::send_api::Host for HostState {
    fn send(
        &mut self,
        port: String,
        action: String,
        body: String,
    ) -> wasmtime::Result<Result<(), p01::types::PluginError>> {
        let doc = SentDocument { port, action, body };
        match self.admit_sent(doc, 1)? {
            Ok(()) => Ok(Ok(())),
            Err(PluginError::Rejected(m)) => Ok(Err(p01::types::PluginError::Rejected(m))),
            Err(PluginError::Failed(m)) => Ok(Err(p01::types::PluginError::Failed(m))),
        }
    }
}

impl HostState {
    /// Take a document a service sends, within the quotas (`items`: the
    /// requests the quota is for). A port that is not configured is
    /// `rejected`; a quota reached stops the call (`Err`).
    pub(super) fn admit_sent(
        &mut self,
        doc: SentDocument,
        items: u32,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        let q = &self.setup.limits.quotas;
        let max_docs = q.sent_documents.saturating_mul(items);
        if self.sent.len() >= max_docs as usize {
            return Err(QuotaExceeded::new(
                format_args!(
                    "sent more than {} documents through the Send API for one request",
                    q.sent_documents
                ),
                "max_sent_documents",
                q.sent_documents,
                &self.setup.port,
            )
            .into());
        }
        let bytes = (doc.port.len() + doc.action.len() + doc.body.len()) as u64;
        if self.sent_bytes + bytes > q.sent_bytes.saturating_mul(u64::from(items)) {
            return Err(QuotaExceeded::new(
                format_args!(
                    "sent more than {} MiB through the Send API for one request",
                    q.sent_bytes >> 20
                ),
                "max_sent_mb",
                q.sent_bytes >> 20,
                &self.setup.port,
            )
            .into());
        }
        if !self.setup.outbound_ports.contains(&doc.port) {
            return Ok(Err(unknown_port(&doc.port, &self.setup)));
        }
        self.sent_bytes += bytes;
        self.sent.push(doc);
        Ok(Ok(()))
    }
}

/// The rejection of a document sent to a port that is not configured.
pub(super) fn unknown_port(port: &str, setup: &SandboxConfig) -> PluginError {
    PluginError::Rejected(format!(
        "no outbound port named {port:?} is configured (known: {})",
        setup
            .outbound_ports
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Link WASI 0.2 and Ferry's host interfaces (both contracts) into `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    rule::ferry::plugin::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    rule::ferry::plugin::host::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    rule::ferry::plugin::documents::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    adapter::ferry::plugin::files::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    p01::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    p01::host::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    v01::service::ferry::plugin::send_api::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}
