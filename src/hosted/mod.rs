//! Transport and clock for hosted platforms (Linux, macOS, ...): plain TCP sockets from the
//! standard library and the system clocks. Firmware supplies its own through the C hooks.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::engine::driver::{Io, Time, Transport};

/// How long one address may take to accept a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP over the operating system's sockets. `connect` blocks: name resolution, then each
/// resolved address for at most `CONNECT_TIMEOUT`, and all of them together (resolution
/// included) for no longer than the budget the client gives (the time left before the
/// attempt's deadline). Reads and writes never block.
#[derive(Default)]
pub struct TcpTransport {
    stream: Option<TcpStream>,
    budget: Option<Duration>,
}

impl Transport for TcpTransport {
    fn set_connect_budget_ms(&mut self, budget_ms: u64) {
        self.budget = Some(Duration::from_millis(budget_ms));
    }

    fn connect(&mut self, host: &str, port: u16) -> Result<(), String> {
        self.close();
        let started = Instant::now();
        let budget = self.budget.unwrap_or(CONNECT_TIMEOUT);
        let addrs = resolve(host, port, budget)?;
        // One address is named by the caller already; of several, the error says which failed.
        let named = addrs.len() > 1;
        let mut last = format!("{host} resolved to no address");
        for addr in addrs {
            let left = budget.saturating_sub(started.elapsed());
            if left.is_zero() {
                last = format!("{addr}: no time left before the deadline");
                break;
            }
            match TcpStream::connect_timeout(&addr, left.min(CONNECT_TIMEOUT)) {
                Ok(stream) => {
                    stream
                        .set_nonblocking(true)
                        .map_err(|e| format!("set_nonblocking: {e}"))?;
                    let _ = stream.set_nodelay(true);
                    self.stream = Some(stream);
                    return Ok(());
                }
                Err(e) if named => last = format!("{addr}: {e}"),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    fn send(&mut self, data: &[u8]) -> Io {
        match self.stream.as_mut() {
            Some(stream) => io_result(stream.write(data)),
            None => Io::Failed("not connected".into()),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Io {
        match self.stream.as_mut() {
            Some(stream) => io_result(stream.read(buf)),
            None => Io::Failed("not connected".into()),
        }
    }

    fn close(&mut self) {
        if let Some(stream) = self.stream.take() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn wait(&mut self, timeout_ms: u64, want_write: bool) {
        let timeout = Duration::from_millis(timeout_ms.max(1));
        let Some(stream) = self.stream.as_ref() else {
            std::thread::sleep(timeout.min(Duration::from_millis(50)));
            return;
        };
        if want_write {
            // A full send buffer drains quickly on a live link; a short sleep avoids spinning.
            std::thread::sleep(timeout.min(Duration::from_millis(5)));
            return;
        }
        // Block in a peek until a byte (or EOF, or an error) is there, or the timeout passes.
        if stream.set_nonblocking(false).is_ok() && stream.set_read_timeout(Some(timeout)).is_ok() {
            let _ = stream.peek(&mut [0u8; 1]);
        }
        let _ = stream.set_nonblocking(true);
    }

    #[cfg(unix)]
    fn socket(&self) -> Option<i32> {
        use std::os::unix::io::AsRawFd;
        self.stream.as_ref().map(AsRawFd::as_raw_fd)
    }
}

/// The addresses of `host`, within `budget`. The system resolver cannot be cancelled and may
/// wait far longer (a DNS server that never answers costs it seconds per try), so it runs on a
/// helper thread that is abandoned, to finish on its own, when the budget runs out.
///
/// The answer comes back through a mutex and a condition variable rather than a channel: a
/// channel's blocking receive keeps a per-thread context on the caller's thread for the life
/// of the thread, allocated through `dps_set_allocator`'s hooks and freed only at exit, after
/// a firmware-style arena is gone. A thread that answered in time is joined, so everything it
/// allocated is freed before the caller goes on.
fn resolve(host: &str, port: u16, budget: Duration) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    type Answer = Option<std::io::Result<Vec<SocketAddr>>>;
    let slot: Arc<(Mutex<Answer>, Condvar)> = Arc::new((Mutex::new(None), Condvar::new()));
    let theirs = Arc::clone(&slot);
    let name = host.to_owned();
    let resolver = std::thread::Builder::new()
        .name("dps-resolve".into())
        .spawn(move || {
            let found = (name.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>);
            let (answer, ready) = &*theirs;
            if let Ok(mut answer) = answer.lock() {
                *answer = Some(found);
                ready.notify_one();
            }
        })
        .map_err(|e| format!("cannot resolve {host}: no resolver thread: {e}"))?;
    let (answer, ready) = &*slot;
    let found = match answer.lock() {
        Ok(guard) => ready
            .wait_timeout_while(guard, budget, |answer| answer.is_none())
            .ok()
            .and_then(|(mut guard, _)| guard.take()),
        Err(_) => None,
    };
    let Some(found) = found else {
        return Err(format!(
            "cannot resolve {host}: no answer from the name server within {} ms",
            budget.as_millis()
        ));
    };
    // It has answered: all that is left is dropping its locals, so this returns at once.
    let _ = resolver.join();
    found.map_err(|e| format!("cannot resolve {host}: {e}"))
}

/// Maps a non-blocking socket read or write to the client's terms: 0 bytes or a reset is a
/// closed connection, EAGAIN/EINTR is "try later".
fn io_result(r: std::io::Result<usize>) -> Io {
    match r {
        Ok(0) => Io::Closed,
        Ok(n) => Io::Done(n),
        Err(e) => match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::Interrupted => Io::WouldBlock,
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
                Io::Closed
            }
            _ => Io::Failed(e.to_string()),
        },
    }
}

/// The host's monotonic clock and system time.
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Time for SystemClock {
    fn now_ms(&mut self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn unix_seconds(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
