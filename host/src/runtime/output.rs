//! What a guest writes to stderr and stdout: captured in memory, for the
//! error of a failing call, up to the call's output quota. A write past the
//! quota traps the guest at once (a pipe that merely refused further
//! writes would let a guest that ignores write errors spin until its time
//! limit).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

#[derive(Debug, Default)]
struct State {
    /// What the current call wrote.
    buf: Vec<u8>,
    /// How much the current call may write.
    quota: usize,
    /// The current call tried to write more.
    exceeded: bool,
}

/// The captured stderr and stdout of one sandbox instance. Cheap to clone:
/// clones share the buffer.
#[derive(Debug, Clone, Default)]
pub struct CapturedOutput {
    state: Arc<Mutex<State>>,
}

impl CapturedOutput {
    /// A new, empty capture that allows `quota` bytes per call.
    pub fn new(quota: usize) -> CapturedOutput {
        let out = CapturedOutput::default();
        out.begin_call(quota);
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start a call: forget the previous call's output; allow `quota` bytes.
    pub fn begin_call(&self, quota: usize) {
        let mut s = self.lock();
        s.buf.clear();
        s.quota = quota;
        s.exceeded = false;
    }

    /// What the current call wrote so far, as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().buf).into_owned()
    }

    /// Whether the current call tried to write past its quota.
    pub fn exceeded(&self) -> bool {
        self.lock().exceeded
    }

    /// Append `bytes`, or refuse them all when they would pass the quota.
    fn append(&self, bytes: &[u8]) -> Result<(), ()> {
        let mut s = self.lock();
        if s.buf.len() + bytes.len() > s.quota {
            s.exceeded = true;
            return Err(());
        }
        s.buf.extend_from_slice(bytes);
        Ok(())
    }
}

/// The largest write a guest is permitted at once (it may write again).
const PERMIT: usize = 64 << 10;

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes).map_err(|()| {
            StreamError::Trap(wasmtime::format_err!(
                "the plugin wrote more to stderr/stdout than its output quota allows"
            ))
        })
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always a permit: a write past the quota must reach `write`, which
        // traps, rather than be refused here, which a guest may ignore.
        Ok(PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            self.append(buf)
                .map(|()| buf.len())
                .map_err(|()| std::io::Error::other("output quota reached")),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_may_write_its_quota_and_no_more_and_the_next_call_starts_empty() {
        let mut out = CapturedOutput::new(10);
        assert_eq!(out.check_write().unwrap(), PERMIT);
        out.write(Bytes::from_static(b"hello ")).unwrap();
        out.write(Bytes::from_static(b"you")).unwrap();
        assert!(!out.exceeded());
        assert!(matches!(
            out.write(Bytes::from_static(b" there")),
            Err(StreamError::Trap(_))
        ));
        assert!(out.exceeded());
        assert_eq!(out.text(), "hello you");
        out.begin_call(10);
        assert_eq!(out.text(), "");
        assert!(!out.exceeded());
        out.write(Bytes::from_static(b"0123456789")).unwrap();
    }
}
