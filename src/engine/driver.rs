//! The driver: pumps bytes between a transport and the engine, and reads the clock.
//!
//! It is the only layer that calls out (through the `Transport` and `Time` traits, which the
//! C ABI implements over the firmware's hooks). It never blocks by itself except in
//! `register_blocking`, which waits through `Transport::wait`.
#![allow(clippy::restriction)] // lint-sweep: engine files are made clean separately

use crate::engine::{Action, Engine, Event};
use crate::error::{dps_result, Error};
use crate::platform::memory;
use crate::prelude::*;
use zeroize::Zeroizing;

/// Result of one transport read or write.
#[derive(Debug, PartialEq, Eq)]
pub enum Io {
    /// This many bytes were transferred (never 0 for a read; 0 is `Closed`).
    Done(usize),
    /// Nothing can be transferred now; try again later.
    WouldBlock,
    /// The peer closed the connection.
    Closed,
    /// The transport failed; the text is for logs.
    Failed(String),
    /// The transport failed in a way no reconnect cures, with this error: its own TLS (TLS
    /// offload) refused the server. Ends the attempt, as a TLS failure inside the library does.
    Fatal(Error),
}

/// A byte-stream transport. Non-blocking by contract: `send`/`recv` return `WouldBlock`
/// rather than wait; `connect` may return before the connection is up (then `send`/`recv`
/// report `WouldBlock` until it is).
pub trait Transport {
    /// Called before each `connect` with the milliseconds left before the attempt's deadline:
    /// a transport whose `connect` blocks (name resolution, a TCP handshake to a silent host)
    /// must give up by then, or the attempt overruns its deadline.
    fn set_connect_budget_ms(&mut self, _budget_ms: u64) {}
    fn connect(&mut self, host: &str, port: u16) -> core::result::Result<(), String>;
    fn send(&mut self, data: &[u8]) -> Io;
    fn recv(&mut self, buf: &mut [u8]) -> Io;
    fn close(&mut self);
    /// Blocks until the connection is probably readable (or writable, when `want_write`) or
    /// `timeout_ms` has passed. Used only by blocking registration.
    fn wait(&mut self, timeout_ms: u64, want_write: bool);
}

/// Monotonic milliseconds for timers, wall-clock seconds for SAS expiry and certificates.
pub trait Time {
    fn now_ms(&mut self) -> u64;
    fn unix_seconds(&mut self) -> u64;
}

/// What one `do_work` call ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Call again within this many milliseconds, or sooner when the connection is readable.
    Pending { next_call_ms: u64 },
    /// The attempt finished; the engine's outcome holds the details.
    Finished(dps_result),
}

/// Bytes read per `recv` call; small enough for a stack-poor target, large enough that one
/// TLS record usually arrives in one or two calls.
const RECV_CHUNK: usize = 4096;
/// Upper bound on read/write rounds inside one `do_work`, so a fast peer cannot starve the
/// caller's event loop.
const MAX_ROUNDS: usize = 64;

pub struct Driver {
    pub engine: Engine,
    /// Zeroizing: in the clear (TLS offload, a proxy CONNECT) it carries secrets.
    unsent: Zeroizing<Vec<u8>>,
    connected: bool,
    /// Whether the current connection has delivered a byte: a failure before that is a
    /// failed connect (a non-blocking connect reports its failure at the first send/recv).
    received_any: bool,
    started: bool,
}

impl Driver {
    pub fn new(engine: Engine) -> Driver {
        Driver {
            engine,
            unsent: Zeroizing::new(Vec::new()),
            connected: false,
            received_any: false,
            started: false,
        }
    }

    /// Starts a new attempt if none is running. Returns `DPS_ERR_INVALID_STATE` if one is.
    pub fn start(&mut self, time: &mut dyn Time) -> Result<(), Error> {
        let now = time.now_ms();
        self.engine.start(now)?;
        self.unsent.clear();
        self.started = true;
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.started && self.engine.is_running()
    }

    /// Does all the work possible now without blocking.
    pub fn do_work(&mut self, transport: &mut dyn Transport, time: &mut dyn Time) -> Step {
        if !self.started {
            return Step::Finished(dps_result::DPS_ERR_INVALID_STATE);
        }
        let now = time.now_ms();
        let oom_before = memory::oom_events();
        self.engine.set_unix_time(time.unix_seconds());
        self.engine.handle_timeout(now);
        for _ in 0..MAX_ROUNDS {
            let now = time.now_ms();
            self.run_actions(transport, time, now);
            let progressed_out = self.flush(transport, now);
            let progressed_in = self.receive(transport, now);
            if memory::oom_events() != oom_before {
                // The firmware's allocator refused a request, which the reserve covered: end
                // the attempt now, before it needs more, so its memory comes back.
                self.engine.abort(Error::new(
                    dps_result::DPS_ERR_OUT_OF_MEMORY,
                    "the allocator returned NULL during the registration (heap too small)",
                ));
                break;
            }
            if !progressed_in && !progressed_out {
                break;
            }
            self.engine.handle_timeout(time.now_ms());
        }
        // Flush what the last events produced (DISCONNECT after success, close requests).
        let now = time.now_ms();
        self.run_actions(transport, time, now);
        self.flush(transport, now);
        self.run_actions(transport, time, now);
        if !self.engine.is_running() {
            self.started = false;
            if self.connected {
                transport.close();
                self.connected = false;
            }
            let code = self
                .engine
                .outcome()
                .result
                .as_ref()
                .map_or(dps_result::DPS_ERR_INTERNAL, |e| e.code);
            return Step::Finished(code);
        }
        let next = self.engine.next_timeout().unwrap_or(now);
        Step::Pending {
            next_call_ms: next.saturating_sub(now),
        }
    }

    /// Blocks until the attempt finishes, waiting on the transport between steps.
    pub fn run_to_completion(
        &mut self,
        transport: &mut dyn Transport,
        time: &mut dyn Time,
        on_events: &mut dyn FnMut(&mut Engine),
    ) -> dps_result {
        loop {
            let step = self.do_work(transport, time);
            on_events(&mut self.engine);
            match step {
                Step::Finished(code) => return code,
                Step::Pending { next_call_ms } => {
                    transport.wait(next_call_ms, self.wants_write());
                }
            }
        }
    }

    /// Whether bytes are waiting for the transport to accept them: the caller should wake on
    /// writability as well as readability.
    pub fn wants_write(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Releases the connection, if any, without touching the engine's outcome.
    pub fn shutdown(&mut self, transport: &mut dyn Transport) {
        if self.connected {
            transport.close();
            self.connected = false;
        }
        self.unsent.clear();
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.engine.poll_event()
    }

    fn run_actions(&mut self, transport: &mut dyn Transport, time: &mut dyn Time, now: u64) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Connect { host, port } => {
                    if self.connected {
                        transport.close();
                    }
                    self.unsent.clear();
                    let deadline = self.engine.deadline().unwrap_or(now);
                    transport.set_connect_budget_ms(deadline.saturating_sub(now));
                    match transport.connect(&host, port) {
                        Ok(()) => {
                            self.connected = true;
                            self.received_any = false;
                            self.engine.set_unix_time(time.unix_seconds());
                            self.engine.on_connected(now);
                        }
                        Err(why) => {
                            self.connected = false;
                            self.engine.on_connection_lost(
                                now,
                                Error::new(
                                    dps_result::DPS_ERR_TRANSPORT_CONNECT,
                                    format!("connect to {host}:{port} failed: {why}"),
                                ),
                            );
                        }
                    }
                }
                Action::Close => {
                    // Give already-produced bytes (DISCONNECT, close_notify) one chance to leave.
                    crate::layers::wipe::append(&mut self.unsent, self.engine.take_transmit());
                    if self.connected && !self.unsent.is_empty() {
                        let _ = transport.send(&self.unsent);
                    }
                    self.unsent.clear();
                    if self.connected {
                        transport.close();
                        self.connected = false;
                    }
                }
            }
        }
    }

    /// Sends as much as the transport takes. Returns whether any byte moved.
    fn flush(&mut self, transport: &mut dyn Transport, now: u64) -> bool {
        crate::layers::wipe::append(&mut self.unsent, self.engine.take_transmit());
        if !self.connected {
            return false;
        }
        let mut moved = false;
        while !self.unsent.is_empty() {
            match transport.send(&self.unsent) {
                Io::Done(n) if n > 0 => {
                    let n = n.min(self.unsent.len());
                    self.unsent.drain(..n);
                    moved = true;
                }
                Io::Done(_) | Io::WouldBlock => break,
                Io::Closed => {
                    self.lost(
                        now,
                        dps_result::DPS_ERR_TRANSPORT_CLOSED,
                        "closed while sending",
                    );
                    break;
                }
                Io::Failed(why) => {
                    self.lost(now, dps_result::DPS_ERR_TRANSPORT_IO, &why);
                    break;
                }
                Io::Fatal(error) => {
                    self.fatal(error);
                    break;
                }
            }
        }
        moved
    }

    /// Reads what is available and feeds it to the engine. Returns whether any byte moved.
    fn receive(&mut self, transport: &mut dyn Transport, now: u64) -> bool {
        if !self.connected {
            return false;
        }
        let mut buf = [0u8; RECV_CHUNK];
        match transport.recv(&mut buf) {
            Io::Done(n) if n > 0 => {
                let n = n.min(buf.len());
                self.engine
                    .handle_input(now, buf.get(..n).unwrap_or_default());
                true
            }
            Io::Done(_) | Io::Closed => {
                self.lost(
                    now,
                    dps_result::DPS_ERR_TRANSPORT_CLOSED,
                    "connection closed by peer",
                );
                true
            }
            Io::WouldBlock => false,
            Io::Failed(why) => {
                self.lost(now, dps_result::DPS_ERR_TRANSPORT_IO, &why);
                true
            }
            Io::Fatal(error) => {
                self.fatal(error);
                true
            }
        }
    }

    fn lost(&mut self, now: u64, code: dps_result, why: &str) {
        self.unsent.clear();
        let error = if self.received_any {
            Error::new(code, why)
        } else {
            Error::new(
                dps_result::DPS_ERR_TRANSPORT_CONNECT,
                format!("connection failed before the server answered: {why}"),
            )
        };
        self.engine.on_connection_lost(now, error);
    }

    /// The transport failed for good (its own TLS refused the server): the attempt ends.
    fn fatal(&mut self, error: Error) {
        self.unsent.clear();
        self.engine.abort(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, KeyKind};
    use zeroize::Zeroizing;

    /// Refuses every connect and records the budget it was given.
    #[derive(Default)]
    struct Refusing {
        budget: Option<u64>,
        budgets: Vec<Option<u64>>,
    }

    impl Transport for Refusing {
        fn set_connect_budget_ms(&mut self, budget_ms: u64) {
            self.budget = Some(budget_ms);
        }
        fn connect(&mut self, _host: &str, _port: u16) -> core::result::Result<(), String> {
            self.budgets.push(self.budget.take());
            Err("refused".into())
        }
        fn send(&mut self, _data: &[u8]) -> Io {
            Io::Failed("not connected".into())
        }
        fn recv(&mut self, _buf: &mut [u8]) -> Io {
            Io::Failed("not connected".into())
        }
        fn close(&mut self) {}
        fn wait(&mut self, _timeout_ms: u64, _want_write: bool) {}
    }

    struct FakeClock(u64);

    impl Time for FakeClock {
        fn now_ms(&mut self) -> u64 {
            self.0
        }
        fn unix_seconds(&mut self) -> u64 {
            1_700_000_000
        }
    }

    #[test]
    fn each_connect_is_given_the_time_left_before_the_deadline() {
        let mut cfg = Config {
            id_scope: Some("0ne00000001".into()),
            registration_id: Some("dev".into()),
            key: Some(KeyKind::Device(Zeroizing::new(
                "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=".into(),
            ))),
            entropy: Some(crate::platform::entropy::test_source()),
            ..Config::default()
        };
        cfg.timing.deadline_ms = 5_000;
        cfg.timing.backoff_initial_ms = 100;
        cfg.timing.backoff_max_ms = 100;
        let mut driver = Driver::new(Engine::new(cfg.settings().unwrap()).unwrap());
        let mut transport = Refusing::default();
        let mut clock = FakeClock(10_000);
        driver.start(&mut clock).unwrap();
        assert!(matches!(
            driver.do_work(&mut transport, &mut clock),
            Step::Pending { .. }
        ));
        clock.0 = 11_200;
        assert!(matches!(
            driver.do_work(&mut transport, &mut clock),
            Step::Pending { .. }
        ));
        assert_eq!(transport.budgets, vec![Some(5_000), Some(3_800)]);
        // Past the deadline nothing is dialled: the attempt ends with a timeout.
        clock.0 = 15_000;
        assert_eq!(
            driver.do_work(&mut transport, &mut clock),
            Step::Finished(dps_result::DPS_ERR_TIMEOUT)
        );
        assert_eq!(transport.budgets.len(), 2);
    }
}
