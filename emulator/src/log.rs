//! The connection log (`--log FILE`): one JSON line per connection, written by its own thread
//! through a bounded queue, so a log that blocks (a FIFO nobody reads, a slow disk) or fails
//! (a full disk) never stalls the server. Lines that find the queue full are dropped and
//! counted; write errors are reported once, naming the file, and counted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// How long a closing connection waits for its line to be written before it closes anyway.
const LINE_WAIT: Duration = Duration::from_secs(1);

enum Msg {
    Line(String, tokio::sync::oneshot::Sender<()>),
    Flush(mpsc::Sender<()>),
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// A line was not written within `LINE_WAIT`: until the writer moves again, closing
    /// connections do not wait for theirs.
    stalled: AtomicBool,
}

pub struct Log {
    tx: SyncSender<Msg>,
    counters: Arc<Counters>,
    path: PathBuf,
}

/// What became of the lines, for the shutdown summary.
pub struct Summary {
    pub written: u64,
    pub dropped: u64,
    pub failed: u64,
    /// Lines still queued when the writer did not finish in time.
    pub unflushed: bool,
}

impl Log {
    /// Opens `path` for appending (the error names it) and starts the writer thread, with
    /// room for `queue` lines.
    pub fn open(path: &Path, queue: usize) -> Result<Log, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("--log {}: {e}", path.display()))?;
        let (tx, rx) = mpsc::sync_channel(queue);
        let counters = Arc::new(Counters::default());
        let writer_counters = counters.clone();
        let name = path.to_owned();
        std::thread::Builder::new()
            .name("dps-emulator-log".into())
            .spawn(move || write_lines(file, &name, rx, &writer_counters))
            .map_err(|e| format!("--log {}: cannot start the writer: {e}", path.display()))?;
        Ok(Log {
            tx,
            counters,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one line and waits (asynchronously, at most a second) until it is written, so
    /// a client that sees its connection close finds its line. A full queue drops the line.
    pub async fn write(&self, line: String) {
        let (done, written) = tokio::sync::oneshot::channel();
        match self.tx.try_send(Msg::Line(line, done)) {
            Ok(()) => {
                if !self.counters.stalled.load(Ordering::Relaxed)
                    && tokio::time::timeout(LINE_WAIT, written).await.is_err()
                {
                    self.counters.stalled.store(true, Ordering::Relaxed);
                }
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits up to `timeout` for the queued lines to be written; never blocks longer.
    pub fn finish(&self, timeout: Duration) -> Summary {
        let (done, flushed) = mpsc::channel();
        let unflushed = match self.tx.try_send(Msg::Flush(done)) {
            Ok(()) => flushed.recv_timeout(timeout).is_err(),
            Err(_) => true,
        };
        Summary {
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            unflushed,
        }
    }
}

fn write_lines(mut file: std::fs::File, path: &Path, rx: Receiver<Msg>, counters: &Counters) {
    let mut reported = false;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Line(line, done) => {
                // One write per line: readers never see half a line.
                let result = file
                    .write_all(format!("{line}\n").as_bytes())
                    .and_then(|()| file.flush());
                match result {
                    Ok(()) => {
                        counters.written.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        if !reported {
                            reported = true;
                            let _ = writeln!(
                                std::io::stderr(),
                                "dps-emulator: log {}: {e}; lines that cannot be written are \
                                 counted in the shutdown summary",
                                path.display()
                            );
                        }
                    }
                }
                counters.stalled.store(false, Ordering::Relaxed);
                let _ = done.send(());
            }
            Msg::Flush(done) => {
                let _ = file.flush();
                let _ = done.send(());
            }
        }
    }
}
