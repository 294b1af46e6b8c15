//! Transport and clock for hosted platforms (Linux, macOS, ...): plain TCP sockets from the
//! standard library and the system clocks. Firmware supplies its own through the C hooks.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};

use crate::engine::driver::{Io, Time, Transport};

/// How long one address may take to accept a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `wait` sleeps at most while a connect is under way: neither std nor socket2 waits
/// for a socket to become writable, so progress is checked this often.
const CONNECT_POLL: Duration = Duration::from_millis(10);

/// TCP over the operating system's sockets. Nothing blocks: `connect` starts name resolution
/// (on a helper thread: the system resolver cannot be made non-blocking) or, for an address,
/// a non-blocking TCP connect, and returns; `send`/`recv` carry it on (the next address when
/// one fails, each for at most `CONNECT_TIMEOUT`) and report `WouldBlock` until the
/// connection is up, or the connect's failure. The client's deadline bounds the whole.
#[derive(Default)]
pub struct TcpTransport {
    state: State,
    budget: Option<Duration>,
}

#[derive(Default)]
enum State {
    #[default]
    Idle,
    /// Waiting for the helper thread's addresses.
    Resolving(Resolver),
    /// A non-blocking connect to one address is under way; `rest` are the ones to try next.
    Connecting(Dial),
    Up(TcpStream),
    /// The connect failed with this cause, reported by the next `send` or `recv`.
    Failed(String),
}

/// The answer slot a resolver thread fills.
type Answer = Option<std::io::Result<Vec<SocketAddr>>>;

struct Resolver {
    host: String,
    slot: Arc<(Mutex<Answer>, Condvar)>,
    thread: JoinHandle<()>,
    started: Instant,
    budget: Duration,
    /// What the deadline reports if it passes first.
    cause: String,
    /// Whether its answer has been taken: then it is joined rather than abandoned.
    answered: bool,
}

struct Dial {
    socket: Socket,
    addr: SocketAddr,
    rest: VecDeque<SocketAddr>,
    /// Whether the error names the address (it was one of several).
    named: bool,
    since: Instant,
}

impl Transport for TcpTransport {
    fn set_connect_budget_ms(&mut self, budget_ms: u64) {
        self.budget = Some(Duration::from_millis(budget_ms));
    }

    fn connect(&mut self, host: &str, port: u16) -> Result<(), String> {
        self.close();
        let budget = self.budget.unwrap_or(CONNECT_TIMEOUT);
        self.state = match host.parse::<IpAddr>() {
            Ok(ip) => dial(VecDeque::from([SocketAddr::new(ip, port)]), false, None),
            Err(_) => State::Resolving(Resolver::start(host, port, budget)?),
        };
        if crate::ffi::platform::allocator_hooks_installed() {
            // The firmware's allocator may not be thread-safe: the resolver thread allocates,
            // so the caller waits for its answer (within the budget) rather than run meanwhile.
            self.await_resolution(budget);
        }
        self.progress();
        match &mut self.state {
            // Failed at once (refused over loopback, no address): reported as a blocking
            // connect's failure is.
            State::Failed(why) => {
                let why = core::mem::take(why);
                self.state = State::Idle;
                Err(why)
            }
            _ => Ok(()),
        }
    }

    fn send(&mut self, data: &[u8]) -> Io {
        match self.progress() {
            Some(stream) => io_result(stream.write(data)),
            None => self.not_up(),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Io {
        match self.progress() {
            Some(stream) => io_result(stream.read(buf)),
            None => self.not_up(),
        }
    }

    fn close(&mut self) {
        match core::mem::take(&mut self.state) {
            State::Up(stream) => {
                let _ = stream.shutdown(Shutdown::Both);
            }
            State::Resolving(resolver) => resolver.abandon(),
            State::Idle | State::Connecting(_) | State::Failed(_) => {}
        }
    }

    fn wait(&mut self, timeout_ms: u64, want_write: bool) {
        let timeout = Duration::from_millis(timeout_ms.max(1));
        let stream = match &self.state {
            State::Up(stream) => stream,
            State::Resolving(_) => {
                self.await_resolution(timeout);
                return;
            }
            State::Connecting(_) => {
                std::thread::sleep(timeout.min(CONNECT_POLL));
                return;
            }
            State::Idle | State::Failed(_) => {
                std::thread::sleep(timeout.min(Duration::from_millis(50)));
                return;
            }
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
        match &self.state {
            State::Up(stream) => Some(stream.as_raw_fd()),
            State::Connecting(dial) => Some(dial.socket.as_raw_fd()),
            State::Idle | State::Resolving(_) | State::Failed(_) => None,
        }
    }

    fn pending_connect(&self) -> Option<&str> {
        match &self.state {
            State::Resolving(resolver) => Some(&resolver.cause),
            // A handshake nobody answers is the client's "no answer from the server".
            State::Connecting(_) => Some(""),
            State::Idle | State::Up(_) | State::Failed(_) => None,
        }
    }
}

impl TcpTransport {
    /// Carries a connect under way as far as it goes without blocking; the stream once up.
    fn progress(&mut self) -> Option<&mut TcpStream> {
        loop {
            self.state = match core::mem::take(&mut self.state) {
                State::Resolving(mut resolver) => match resolver.poll() {
                    Some(next) => {
                        resolver.abandon();
                        next
                    }
                    None => {
                        self.state = State::Resolving(resolver);
                        break;
                    }
                },
                State::Connecting(dial) => match dial.poll() {
                    Ok(next) => next,
                    Err(dial) => {
                        self.state = State::Connecting(dial);
                        break;
                    }
                },
                other => {
                    self.state = other;
                    break;
                }
            };
        }
        match &mut self.state {
            State::Up(stream) => Some(stream),
            _ => None,
        }
    }

    /// Blocks until the resolver has answered or `budget` has passed.
    fn await_resolution(&self, budget: Duration) {
        if let State::Resolving(resolver) = &self.state {
            let (answer, ready) = &*resolver.slot;
            if let Ok(guard) = answer.lock() {
                let _ = ready.wait_timeout_while(guard, budget, |answer| answer.is_none());
            }
        }
    }

    /// What `send`/`recv` report while there is no connection.
    fn not_up(&mut self) -> Io {
        match &mut self.state {
            State::Resolving(_) | State::Connecting(_) => Io::WouldBlock,
            State::Failed(why) => Io::Failed(core::mem::take(why)),
            State::Idle | State::Up(_) => Io::Failed("not connected".into()),
        }
    }
}

/// Starts a connect to the first of `addrs` that takes one, the others kept for later; the
/// failure of the last (or `last`, the cause so far, when none is left).
fn dial(mut addrs: VecDeque<SocketAddr>, named: bool, mut last: Option<String>) -> State {
    while let Some(addr) = addrs.pop_front() {
        match start_connect(addr) {
            Ok(socket) => {
                return State::Connecting(Dial {
                    socket,
                    addr,
                    rest: addrs,
                    named,
                    since: Instant::now(),
                })
            }
            Err(e) => last = Some(describe(addr, named, &e)),
        }
    }
    State::Failed(last.unwrap_or_else(|| "resolved to no address".into()))
}

/// A connect to `addr` under way, or already up (loopback can connect at once).
fn start_connect(addr: SocketAddr) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => Ok(socket),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(socket),
        Err(e) => Err(e),
    }
}

fn describe(addr: SocketAddr, named: bool, e: &std::io::Error) -> String {
    if named {
        format!("{addr}: {e}")
    } else {
        e.to_string()
    }
}

impl Dial {
    /// The next state once this connect has ended (up, failed over to the next address, or
    /// failed), or the connect back while it is under way.
    fn poll(self) -> Result<State, Dial> {
        let failure = match self.socket.take_error() {
            Ok(Some(e)) | Err(e) => e,
            Ok(None) => match self.socket.peer_addr() {
                Ok(_) => {
                    let stream = TcpStream::from(self.socket);
                    let _ = stream.set_nodelay(true);
                    return Ok(State::Up(stream));
                }
                Err(_) if self.since.elapsed() < CONNECT_TIMEOUT => return Err(self),
                Err(_) => std::io::Error::from(ErrorKind::TimedOut),
            },
        };
        let last = describe(self.addr, self.named, &failure);
        Ok(dial(self.rest, self.named, Some(last)))
    }
}

impl Resolver {
    /// Resolves `host` on a helper thread, within `budget`. The system resolver cannot be
    /// cancelled and may wait far longer (a DNS server that never answers costs it seconds per
    /// try), so a thread that has not answered when the connect ends is abandoned, to finish
    /// on its own.
    ///
    /// The answer comes back through a mutex and a condition variable rather than a channel:
    /// a channel's blocking receive keeps a per-thread context on the caller's thread for the
    /// life of the thread, allocated through `dps_set_allocator`'s hooks and freed only at
    /// exit, after a firmware-style arena is gone. A thread that answered is joined as soon as
    /// its answer is seen, so everything it allocated is freed before the caller goes on.
    fn start(host: &str, port: u16, budget: Duration) -> Result<Resolver, String> {
        let slot: Arc<(Mutex<Answer>, Condvar)> = Arc::new((Mutex::new(None), Condvar::new()));
        let theirs = Arc::clone(&slot);
        let name = host.to_owned();
        let thread = std::thread::Builder::new()
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
        Ok(Resolver {
            host: host.to_owned(),
            slot,
            answered: false,
            thread,
            started: Instant::now(),
            budget,
            cause: format!(
                "cannot resolve {host}: no answer from the name server within {} ms",
                budget.as_millis()
            ),
        })
    }

    /// The next state once the answer is in (or the budget is spent), or None.
    fn poll(&mut self) -> Option<State> {
        let found = self.slot.0.lock().ok().and_then(|mut answer| answer.take());
        self.answered |= found.is_some();
        match found {
            Some(Ok(addrs)) => {
                let named = addrs.len() > 1;
                let last = format!("{} resolved to no address", self.host);
                Some(dial(addrs.into(), named, Some(last)))
            }
            Some(Err(e)) => Some(State::Failed(format!("cannot resolve {}: {e}", self.host))),
            None if self.started.elapsed() >= self.budget => {
                Some(State::Failed(core::mem::take(&mut self.cause)))
            }
            None => None,
        }
    }

    /// Leaves the thread to finish on its own, unless it has answered: then it is joined, which
    /// returns at once (all it has left to do is drop its locals).
    fn abandon(self) {
        let answered = self.answered || self.slot.0.lock().is_ok_and(|answer| answer.is_some());
        if answered {
            let _ = self.thread.join();
        }
    }
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
