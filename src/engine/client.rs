//! The client façade: one registration client that owns the engine, the transport and the
//! clock. It pumps bytes between the transport and the engine, reads the clock, and is the
//! only thing the C ABI and the tests drive.
//!
//! `step` does the work possible now without blocking; `register_blocking` runs an attempt to
//! its end through the one blocking loop, `run_blocking`, which waits through
//! `Transport::wait` between steps.

use super::io::{Io, Time, Transport};
use super::{Action, Engine, Event, Outcome, Settings};
use crate::error::{Error, ErrorKind, Result};
use crate::platform::memory;
use crate::prelude::*;
use zeroize::Zeroizing;

/// What one `step` ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Call again within this many milliseconds, or sooner when the connection is readable.
    Pending { next_call_ms: u64 },
    /// The attempt finished, assigned or with this error; `Client::outcome` holds the
    /// details.
    Finished(core::result::Result<(), ErrorKind>),
}

/// Bytes read per `recv` call; small enough for a stack-poor target, large enough that one
/// TLS record usually arrives in one or two calls.
const RECV_CHUNK: usize = 4096;
/// Upper bound on read/write rounds inside one `step`, so a fast peer cannot starve the
/// caller's event loop.
const MAX_ROUNDS: usize = 64;
/// How soon to be called again while the transport's connect is under way: it may progress
/// (a name resolved, an address given up) with no socket event to wake the caller.
const CONNECT_POLL_MS: u64 = 20;

/// One device's registration client over transport `T` and clock `C` (owned, boxed, or
/// borrowed as `&mut`).
pub struct Client<T, C> {
    engine: Engine,
    transport: T,
    clock: C,
    /// Zeroizing: in the clear (TLS offload, a proxy CONNECT) it carries secrets.
    unsent: Zeroizing<Vec<u8>>,
    connected: bool,
    /// Whether the current connection has delivered a byte: a failure before that is a
    /// failed connect (a non-blocking connect reports its failure at the first send/recv).
    received_any: bool,
}

/// Something the blocking loop can drive: a `Client`, or a C handle that lends its client for
/// each step and each wait and runs its callbacks between them with no borrow alive.
pub trait Drive {
    /// One non-blocking step, as `Client::step`, its events delivered.
    fn step(&mut self) -> Step;
    /// Blocks until the connection is probably ready or `timeout_ms` has passed.
    fn wait(&mut self, timeout_ms: u64);
}

/// The blocking loop: steps until the attempt finishes, waiting between steps.
pub fn run_blocking(target: &mut dyn Drive) -> core::result::Result<(), ErrorKind> {
    loop {
        match target.step() {
            Step::Finished(result) => return result,
            Step::Pending { next_call_ms } => target.wait(next_call_ms),
        }
    }
}

/// A client whose events go to a Rust closure after each step.
struct Delivering<'a, T, C> {
    client: &'a mut Client<T, C>,
    on_event: &'a mut dyn FnMut(Event),
}

impl<T: Transport, C: Time> Drive for Delivering<'_, T, C> {
    fn step(&mut self) -> Step {
        let step = self.client.step();
        while let Some(event) = self.client.poll_event() {
            (self.on_event)(event);
        }
        step
    }

    fn wait(&mut self, timeout_ms: u64) {
        self.client.wait(timeout_ms);
    }
}

impl<T: Transport, C: Time> Client<T, C> {
    /// Validates the settings; nothing is sent until the first `step` (or `start`).
    pub fn new(settings: Settings, transport: T, clock: C) -> Result<Self> {
        Ok(Client {
            engine: Engine::new(settings)?,
            transport,
            clock,
            unsent: Zeroizing::new(Vec::new()),
            connected: false,
            received_any: false,
        })
    }

    /// Starts a new attempt; `ErrorKind::InvalidState` if one is running. `step` starts one by
    /// itself when none runs: this is for callers that want the start's error on its own.
    pub fn start(&mut self) -> Result<()> {
        let now = self.clock.now_ms();
        self.engine.start(now)?;
        self.unsent.clear();
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.engine.is_running()
    }

    /// Does all the work possible now without blocking. Starts an attempt when none runs (the
    /// first call, and the first after an attempt finished): that is how a failed or timed-out
    /// registration is retried on the same client.
    pub fn step(&mut self) -> Step {
        if !self.engine.is_running() {
            if let Err(e) = self.start() {
                return Step::Finished(Err(e.kind));
            }
        }
        let now = self.clock.now_ms();
        let oom_before = memory::oom_events();
        self.engine.set_unix_time(self.clock.unix_seconds());
        self.connect_overdue(now);
        self.engine.handle_timeout(now);
        for _ in 0..MAX_ROUNDS {
            let now = self.clock.now_ms();
            let now = self.run_actions(now);
            let progressed_out = self.flush(now);
            let progressed_in = self.receive(now);
            if memory::oom_events() != oom_before {
                // The firmware's allocator refused a request, which the reserve covered: end
                // the attempt now, before it needs more, so its memory comes back.
                self.engine.abort(Error::new(
                    ErrorKind::OutOfMemory,
                    "the allocator returned NULL during the registration (heap too small)",
                ));
                break;
            }
            if !progressed_in && !progressed_out {
                break;
            }
            let now = self.clock.now_ms();
            self.engine.handle_timeout(now);
        }
        // Flush what the last events produced (DISCONNECT after success, close requests).
        let now = self.clock.now_ms();
        let now = self.run_actions(now);
        self.flush(now);
        self.run_actions(now);
        if !self.engine.is_running() {
            if self.connected {
                self.transport.close();
                self.connected = false;
            }
            let result = match &self.engine.outcome().result {
                Some(Ok(())) => Ok(()),
                Some(Err(e)) => Err(e.kind),
                None => Err(ErrorKind::Internal),
            };
            return Step::Finished(result);
        }
        let next = self.engine.next_timeout().unwrap_or(now);
        let mut next_call_ms = next.saturating_sub(now);
        if self.connected && self.transport.pending_connect().is_some() {
            next_call_ms = next_call_ms.min(CONNECT_POLL_MS);
        }
        Step::Pending { next_call_ms }
    }

    /// At the deadline, a connect still under way for a reason of its own (a name the name
    /// server has not resolved) fails with that reason, so that the attempt's error says what
    /// it waited for rather than that the server did not answer.
    fn connect_overdue(&mut self, now: u64) {
        let overdue = match self.engine.deadline() {
            Some(deadline) => self.connected && now >= deadline,
            None => false,
        };
        if !overdue {
            return;
        }
        let cause = match self.transport.pending_connect() {
            Some(cause) if !cause.is_empty() => cause.to_owned(),
            _ => return,
        };
        self.transport.close();
        self.connected = false;
        self.unsent.clear();
        self.engine
            .on_connection_lost(now, Error::new(ErrorKind::TransportConnect, cause));
    }

    /// Blocks in the transport's `wait` until the connection is probably ready (readable, or
    /// writable while bytes wait to leave) or `timeout_ms` has passed.
    pub fn wait(&mut self, timeout_ms: u64) {
        let want_write = self.wants_write();
        self.transport.wait(timeout_ms, want_write);
    }

    /// Runs an attempt (the running one, or a new one) to its end, blocking; each step's
    /// events go to `on_event`.
    pub fn register_blocking(
        &mut self,
        on_event: &mut dyn FnMut(Event),
    ) -> core::result::Result<(), ErrorKind> {
        run_blocking(&mut Delivering {
            client: self,
            on_event,
        })
    }

    /// What the service told the running or last attempt, and its result.
    pub fn outcome(&self) -> &Outcome {
        self.engine.outcome()
    }

    /// The next status change or log line, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.engine.poll_event()
    }

    /// Whether bytes are waiting for the transport to accept them: the caller should wake on
    /// writability as well as readability.
    pub fn wants_write(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// The socket of the open connection (see `Transport::socket`), or None.
    pub fn socket(&self) -> Option<i32> {
        if self.connected {
            self.transport.socket()
        } else {
            None
        }
    }

    /// Releases the connection, if any, without touching the outcome.
    pub fn shutdown(&mut self) {
        if self.connected {
            self.transport.close();
            self.connected = false;
        }
        self.unsent.clear();
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }

    /// Carries out the engine's actions. Returns the time after them: a connect hook may block
    /// (a modem's dial, a resolver), and what follows it must be timed from its end.
    fn run_actions(&mut self, mut now: u64) -> u64 {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Connect { host, port } => {
                    if self.connected {
                        self.transport.close();
                    }
                    self.unsent.clear();
                    let deadline = self.engine.deadline().unwrap_or(now);
                    let budget = deadline.saturating_sub(now);
                    if budget == 0 {
                        // No time left to connect in: the deadline ends the attempt instead.
                        self.engine.handle_timeout(now);
                        continue;
                    }
                    self.transport.set_connect_budget_ms(budget);
                    let connected = self.transport.connect(&host, port);
                    // The back-off after a failure, and the connection's timers, start when
                    // the hook returned, not when it was called.
                    now = self.clock.now_ms();
                    match connected {
                        Ok(()) => {
                            self.connected = true;
                            self.received_any = false;
                            self.engine.set_unix_time(self.clock.unix_seconds());
                            self.engine.on_connected(now);
                        }
                        Err(why) => {
                            self.connected = false;
                            self.engine.on_connection_lost(
                                now,
                                Error::new(ErrorKind::TransportConnect, why),
                            );
                        }
                    }
                }
                Action::Close => {
                    // Give already-produced bytes (DISCONNECT, close_notify) one chance to leave.
                    crate::layers::wipe::append(&mut self.unsent, self.engine.take_transmit());
                    if self.connected && !self.unsent.is_empty() {
                        let _ = self.transport.send(&self.unsent);
                    }
                    self.unsent.clear();
                    if self.connected {
                        self.transport.close();
                        self.connected = false;
                    }
                }
            }
        }
        now
    }

    /// Sends as much as the transport takes. Returns whether any byte moved.
    fn flush(&mut self, now: u64) -> bool {
        crate::layers::wipe::append(&mut self.unsent, self.engine.take_transmit());
        if !self.connected {
            return false;
        }
        let mut moved = false;
        while !self.unsent.is_empty() {
            let connecting = self.transport.pending_connect().is_some();
            match self.transport.send(&self.unsent) {
                Io::Done(n) if n > 0 => {
                    let n = n.min(self.unsent.len());
                    self.unsent.drain(..n);
                    moved = true;
                }
                Io::Done(_) | Io::WouldBlock => break,
                Io::Closed => {
                    self.lost(now, ErrorKind::TransportClosed, "closed while sending");
                    break;
                }
                Io::Failed(why) if connecting => {
                    self.connect_failed(now, why);
                    break;
                }
                Io::Failed(why) => {
                    self.lost(now, ErrorKind::TransportIo, &why);
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
    fn receive(&mut self, now: u64) -> bool {
        if !self.connected {
            return false;
        }
        let mut buf = [0u8; RECV_CHUNK];
        let connecting = self.transport.pending_connect().is_some();
        match self.transport.recv(&mut buf) {
            Io::Done(n) if n > 0 => {
                let n = n.min(buf.len());
                self.received_any = true;
                self.engine
                    .handle_input(now, buf.get(..n).unwrap_or_default());
                true
            }
            Io::Done(_) | Io::Closed => {
                self.lost(now, ErrorKind::TransportClosed, "connection closed by peer");
                true
            }
            Io::WouldBlock => false,
            Io::Failed(why) if connecting => {
                self.connect_failed(now, why);
                true
            }
            Io::Failed(why) => {
                self.lost(now, ErrorKind::TransportIo, &why);
                true
            }
            Io::Fatal(error) => {
                self.fatal(error);
                true
            }
        }
    }

    fn lost(&mut self, now: u64, kind: ErrorKind, why: &str) {
        self.unsent.clear();
        let error = if self.received_any {
            Error::new(kind, why)
        } else {
            Error::new(
                ErrorKind::TransportConnect,
                format!("connection failed before the server answered: {why}"),
            )
        };
        self.engine.on_connection_lost(now, error);
    }

    /// The transport's non-blocking connect failed: reported as a failed connect is.
    fn connect_failed(&mut self, now: u64, why: String) {
        self.unsent.clear();
        self.engine
            .on_connection_lost(now, Error::new(ErrorKind::TransportConnect, why));
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
    use crate::engine::{Level, Status};
    use std::cell::Cell;
    use std::rc::Rc;
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

    fn config() -> Config {
        Config {
            id_scope: Some("0ne00000001".parse().unwrap()),
            registration_id: Some("dev".parse().unwrap()),
            key: Some(KeyKind::Device(Zeroizing::new(
                "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=".into(),
            ))),
            entropy: Some(crate::platform::entropy::test_source()),
            ..Config::default()
        }
    }

    #[test]
    fn each_connect_is_given_the_time_left_before_the_deadline() {
        let mut cfg = config();
        cfg.timing.deadline_ms = 5_000;
        cfg.timing.backoff_initial_ms = 100;
        cfg.timing.backoff_max_ms = 100;
        let mut client = Client::new(
            cfg.settings().unwrap(),
            Refusing::default(),
            FakeClock(10_000),
        )
        .unwrap();
        client.start().unwrap();
        assert!(matches!(client.step(), Step::Pending { .. }));
        client.clock_mut().0 = 11_200;
        assert!(matches!(client.step(), Step::Pending { .. }));
        assert_eq!(client.transport().budgets, vec![Some(5_000), Some(3_800)]);
        // Past the deadline nothing is dialled: the attempt ends with the connect's failure,
        // the service never having answered.
        client.clock_mut().0 = 15_000;
        assert_eq!(
            client.step(),
            Step::Finished(Err(ErrorKind::TransportConnect))
        );
        assert_eq!(client.transport().budgets.len(), 2);
        let Some(Err(error)) = &client.outcome().result else {
            panic!("no error: {:?}", client.outcome().result);
        };
        assert_eq!(
            error.to_string(),
            "could not connect to the server: global.azure-devices-provisioning.net:8883, \
             2 attempts in 5000 ms: refused"
        );
    }

    /// Reads the given times, one per call, then stays at the last.
    struct SteppingClock(Vec<u64>);

    impl Time for SteppingClock {
        fn now_ms(&mut self) -> u64 {
            if self.0.len() > 1 {
                self.0.remove(0)
            } else {
                self.0[0]
            }
        }
        fn unix_seconds(&mut self) -> u64 {
            1_700_000_000
        }
    }

    #[test]
    fn no_connect_is_started_without_time_left() {
        let mut cfg = config();
        cfg.timing.deadline_ms = 5_000;
        // The attempt starts at 0 and its first timers run at 0; by the time the connect
        // would be made, the deadline has passed.
        let clock = SteppingClock(vec![0, 0, 5_000]);
        let mut client = Client::new(cfg.settings().unwrap(), Refusing::default(), clock).unwrap();
        assert_eq!(
            client.step(),
            Step::Finished(Err(ErrorKind::TransportConnect))
        );
        assert!(client.transport().budgets.is_empty(), "nothing was dialled");
    }

    /// Refuses every connect after blocking in it for `connect_ms` of the shared clock (a
    /// modem's dial, a resolver that gets no answer), and records when each was called; its
    /// `wait` moves the shared clock on by the time asked, as a blocking wait would.
    struct RefusingAndWaiting {
        refusing: Refusing,
        now: Rc<Cell<u64>>,
        connect_ms: u64,
        dialled_at: Vec<u64>,
        waits: usize,
    }

    impl RefusingAndWaiting {
        fn new(now: &Rc<Cell<u64>>, connect_ms: u64) -> RefusingAndWaiting {
            RefusingAndWaiting {
                refusing: Refusing::default(),
                now: now.clone(),
                connect_ms,
                dialled_at: Vec::new(),
                waits: 0,
            }
        }
    }

    impl Transport for RefusingAndWaiting {
        fn connect(&mut self, host: &str, port: u16) -> core::result::Result<(), String> {
            self.dialled_at.push(self.now.get());
            self.now.set(self.now.get() + self.connect_ms);
            self.refusing.connect(host, port)
        }
        fn send(&mut self, data: &[u8]) -> Io {
            self.refusing.send(data)
        }
        fn recv(&mut self, buf: &mut [u8]) -> Io {
            self.refusing.recv(buf)
        }
        fn close(&mut self) {}
        fn wait(&mut self, timeout_ms: u64, _want_write: bool) {
            self.waits += 1;
            self.now.set(self.now.get() + timeout_ms);
        }
    }

    struct SharedClock(Rc<Cell<u64>>);

    impl Time for SharedClock {
        fn now_ms(&mut self) -> u64 {
            self.0.get()
        }
        fn unix_seconds(&mut self) -> u64 {
            1_700_000_000
        }
    }

    #[test]
    fn the_back_off_after_a_blocking_connect_starts_when_the_connect_returns() {
        let mut cfg = config();
        cfg.timing.backoff_initial_ms = 1_000;
        cfg.timing.backoff_max_ms = 1_000;
        cfg.timing.deadline_ms = 10_000;
        let now = Rc::new(Cell::new(0));
        let transport = RefusingAndWaiting::new(&now, 1_500);
        let mut client =
            Client::new(cfg.settings().unwrap(), transport, SharedClock(now.clone())).unwrap();
        assert_eq!(
            client.register_blocking(&mut |_| {}),
            Err(ErrorKind::TransportConnect)
        );
        // Timed from the call, the back-off (500-1000 ms) would have passed inside the 1.5 s
        // connect, and the next dial would follow at once, with no back-off at all.
        let calls = &client.transport().dialled_at;
        assert!(calls.len() >= 2, "{calls:?}");
        assert!(
            calls.windows(2).all(|w| w[1] - w[0] >= 1_500 + 500),
            "a dial without back-off: {calls:?}"
        );
        assert!(calls.len() <= 5, "{calls:?}");
        // This hook ignores its budget, so the last connect may run past the deadline.
        assert!(
            (10_000..=11_500).contains(&now.get()),
            "ended at {}",
            now.get()
        );
    }

    #[test]
    fn register_blocking_waits_as_asked_and_runs_a_new_attempt_each_time() {
        let mut cfg = config();
        cfg.timing.backoff_initial_ms = 300;
        cfg.timing.backoff_max_ms = 300;
        cfg.timing.deadline_ms = 3_000;
        let now = Rc::new(Cell::new(0));
        let transport = RefusingAndWaiting::new(&now, 0);
        let mut client =
            Client::new(cfg.settings().unwrap(), transport, SharedClock(now.clone())).unwrap();
        let mut events = Vec::new();
        // Refused connects are retried until the deadline, one back-off of 150-300 ms apart.
        let mut dials = 0;
        for _ in 0..2 {
            assert_eq!(
                client.register_blocking(&mut |e| events.push(e)),
                Err(ErrorKind::TransportConnect)
            );
            assert!(!client.is_running());
            let transport = client.transport();
            let this_attempt = transport.refusing.budgets.len() - dials;
            dials = transport.refusing.budgets.len();
            assert!((10..=21).contains(&this_attempt), "{this_attempt} dials");
            assert_eq!(
                transport.waits, dials,
                "one wait per back-off, the last one up to the deadline"
            );
            assert!(
                matches!(events.last(), Some(Event::Log(Level::Error, line))
                    if line.starts_with("DPS_ERR_TRANSPORT_CONNECT")),
                "{events:?}"
            );
        }
        assert_eq!(now.get(), 6_000, "the clock moved only by waiting");
        assert!(events.contains(&Event::Status(Status::Failed)));
    }
}
