//! Fault injection at every byte: a transport wrapped around the real TCP transport (talking
//! TLS to the real emulator) cuts the connection, fails, or reports would-block exactly at one
//! byte offset of the session, in either direction; another delivers every byte separately.
//! Each faulted attempt must end, within a short deadline, assigned (a cut or an error is
//! retried on a new connection), never a panic or a hang; the lost connection must be logged
//! with the right error (a drop after the server's first byte is a drop, before it a failed
//! connect); and a second attempt on the same client, with the fault disabled, must succeed
//! too.

mod common;

use std::time::{Duration, Instant};

use common::{device_key, emulator_config, sym_emulator, Emulator};
use dps_mqtt::config::Config;
use dps_mqtt::engine::driver::{Io, Transport};
use dps_mqtt::engine::{Client, Event, Level, Step};
use dps_mqtt::error::ErrorKind;
use dps_mqtt::hosted::{SystemClock, TcpTransport};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Send,
    Recv,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Cut,
    Fail,
    WouldBlock,
}

#[derive(Clone, Copy, Debug)]
struct Fault {
    dir: Dir,
    offset: usize,
    kind: Kind,
}

/// Counts the bytes of the whole session (over every connection) in each direction and fires
/// the fault once, when the next byte in its direction is byte `offset`.
#[derive(Default)]
struct FaultTransport {
    inner: TcpTransport,
    sent: usize,
    received: usize,
    fault: Option<Fault>,
    fired: bool,
    one_byte: bool,
    connects: usize,
    /// Bytes received on the current connection.
    received_here: usize,
    /// `received_here` when the fault fired.
    received_before_fault: Option<usize>,
}

impl FaultTransport {
    /// How many bytes of `len` may pass before the fault, or `None` when it fires now.
    fn limit(&mut self, dir: Dir, len: usize) -> Option<usize> {
        let done = if dir == Dir::Send {
            self.sent
        } else {
            self.received
        };
        let mut allowed = if self.one_byte { len.min(1) } else { len };
        if let Some(f) = self.fault.filter(|f| f.dir == dir && !self.fired) {
            if done == f.offset {
                self.fired = true;
                self.received_before_fault = Some(self.received_here);
                return None;
            }
            if f.offset > done {
                allowed = allowed.min(f.offset - done);
            }
        }
        Some(allowed)
    }

    fn fire(&mut self) -> Io {
        match self.fault.map(|f| f.kind) {
            Some(Kind::Cut) => {
                self.inner.close();
                Io::Closed
            }
            Some(Kind::Fail) => Io::Failed("injected failure".into()),
            Some(Kind::WouldBlock) | None => Io::WouldBlock,
        }
    }
}

impl Transport for FaultTransport {
    fn connect(&mut self, host: &str, port: u16) -> Result<(), String> {
        self.connects += 1;
        self.received_here = 0;
        self.inner.connect(host, port)
    }

    fn send(&mut self, data: &[u8]) -> Io {
        let Some(n) = self.limit(Dir::Send, data.len()) else {
            return self.fire();
        };
        let io = self.inner.send(&data[..n]);
        if let Io::Done(m) = io {
            self.sent += m;
        }
        io
    }

    fn recv(&mut self, buf: &mut [u8]) -> Io {
        let len = buf.len();
        let Some(n) = self.limit(Dir::Recv, len) else {
            return self.fire();
        };
        let io = self.inner.recv(&mut buf[..n]);
        if let Io::Done(m) = io {
            self.received += m;
            self.received_here += m;
        }
        io
    }

    fn close(&mut self) {
        self.inner.close();
    }

    fn wait(&mut self, timeout_ms: u64, want_write: bool) {
        self.inner.wait(timeout_ms, want_write);
    }
}

/// Hang guard per attempt; the engine's own deadline is shorter.
const RUN_LIMIT: Duration = Duration::from_secs(15);

type FaultClient = Client<FaultTransport, SystemClock>;

/// Steps one attempt to its end, as `register_blocking` does, checking the hang guard between
/// steps (each wait is cut to 200 ms for it). Returns the result and the log lines of the
/// connections lost on the way.
fn run(client: &mut FaultClient, what: &str) -> (Result<(), ErrorKind>, Vec<String>) {
    client.start().expect("no attempt is running");
    let started = Instant::now();
    let mut lost = Vec::new();
    loop {
        let step = client.step();
        while let Some(event) = client.poll_event() {
            if let Event::Log(Level::Warn, line) = event {
                if line.contains(" lost (") {
                    lost.push(line);
                }
            }
        }
        match step {
            Step::Finished(code) => return (code, lost),
            Step::Pending { next_call_ms } => {
                assert!(started.elapsed() < RUN_LIMIT, "{what}: attempt hangs");
                client.wait(next_call_ms.min(200));
            }
        }
    }
}

struct Setup {
    _emu: Emulator,
    cfg: Config,
}

fn setup() -> Setup {
    let name = "fault-dev";
    let emu = sym_emulator(name, json!({ "retryAfter": 0 }), &[]);
    let mut cfg = emulator_config(&emu, Some(name), device_key(name));
    cfg.timing.deadline_ms = 8_000;
    cfg.timing.backoff_initial_ms = 5;
    cfg.timing.backoff_max_ms = 20;
    Setup { _emu: emu, cfg }
}

fn new_client(cfg: &Config, transport: FaultTransport) -> FaultClient {
    Client::new(
        cfg.settings().expect("valid settings"),
        transport,
        SystemClock::default(),
    )
    .expect("client")
}

/// Records a clean session's byte counts in each direction.
fn session_length(cfg: &Config) -> (usize, usize) {
    let mut client = new_client(cfg, FaultTransport::default());
    assert_eq!(run(&mut client, "clean"), (Ok(()), vec![]));
    (client.transport().sent, client.transport().received)
}

/// Bytes at the end of a clean session that an assigned attempt need not move: the close path
/// gives the TLS-wrapped DISCONNECT and close_notify one send and does not retry a partial one,
/// and the server's last records are not read once assigned. Sessions also vary by a few bytes
/// (SAS expiry, timestamps).
const CLOSE_TAIL: usize = 96;

fn faulted_then_clean(cfg: &Config, fault: Fault, clean_len: usize) -> &'static str {
    let what = format!("{fault:?}");
    let mut client = new_client(
        cfg,
        FaultTransport {
            fault: Some(fault),
            ..FaultTransport::default()
        },
    );
    let (code, lost) = run(&mut client, &what);
    let transport = client.transport();
    // One fault never corrupts the stream and the reconnect budget outlasts it: a cut or an
    // error is retried on a new connection, a would-block is waited out.
    assert_eq!(code, Ok(()), "{what}: the faulted attempt failed");
    if !transport.fired {
        assert!(
            fault.offset + CLOSE_TAIL >= clean_len,
            "{what}: the fault never fired"
        );
    }
    let how = match (transport.fired, transport.connects) {
        (false, _) => "not reached (close path)",
        (true, 1) => "fired, same connection",
        (true, _) => "fired, reconnected",
    };
    if !matches!(fault.kind, Kind::WouldBlock) && how == "fired, same connection" {
        assert!(
            fault.dir == Dir::Send && fault.offset + CLOSE_TAIL >= clean_len,
            "{what}: a lost connection before assignment was not replaced"
        );
    }
    // The faulted connection's end, as the log reports it.
    let expected = match (how, fault.kind, transport.received_before_fault) {
        ("fired, reconnected", Kind::Cut | Kind::Fail, Some(0)) => Some((
            "DPS_ERR_TRANSPORT_CONNECT",
            "connection failed before the server answered",
        )),
        ("fired, reconnected", Kind::Cut, Some(_)) => {
            let why = match fault.dir {
                Dir::Send => "closed while sending",
                Dir::Recv => "connection closed by peer",
            };
            Some(("DPS_ERR_TRANSPORT_CLOSED", why))
        }
        ("fired, reconnected", Kind::Fail, Some(_)) => {
            Some(("DPS_ERR_TRANSPORT_IO", "injected failure"))
        }
        _ => None,
    };
    match expected {
        Some((name, why)) => {
            assert_eq!(lost.len(), 1, "{what}: one connection lost: {lost:?}");
            let line = &lost[0];
            assert!(
                line.starts_with("connection 1 to localhost:")
                    && line.contains(&format!("lost ({name}: "))
                    && line.contains(why),
                "{what}: want {name} ({why}) after {:?} bytes received, got {line:?}",
                transport.received_before_fault
            );
        }
        None => assert!(lost.is_empty(), "{what} ({how}): nothing lost: {lost:?}"),
    }
    client.transport_mut().fault = None;
    assert_eq!(
        run(&mut client, &what),
        (Ok(()), vec![]),
        "{what}: the retry on the same client failed"
    );
    how
}

fn sweep(kind: Kind) {
    let s = setup();
    let (sent, received) = session_length(&s.cfg);
    let started = Instant::now();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for (dir, len) in [(Dir::Send, sent), (Dir::Recv, received)] {
        for offset in 0..len {
            let how = faulted_then_clean(&s.cfg, Fault { dir, offset, kind }, len);
            *outcomes.entry(format!("{dir:?} {how}")).or_default() += 1;
        }
    }
    eprintln!(
        "{kind:?}: session {sent} bytes sent, {received} received; every faulted attempt assigned: {outcomes:?}; {:?}",
        started.elapsed()
    );
}

#[test]
fn cut_at_every_byte() {
    sweep(Kind::Cut);
}

#[test]
fn error_at_every_byte() {
    sweep(Kind::Fail);
}

#[test]
fn would_block_at_every_byte() {
    sweep(Kind::WouldBlock);
}

#[test]
fn every_byte_delivered_separately() {
    let s = setup();
    let mut client = new_client(
        &s.cfg,
        FaultTransport {
            one_byte: true,
            ..FaultTransport::default()
        },
    );
    assert_eq!(run(&mut client, "one byte"), (Ok(()), vec![]));
    let transport = client.transport();
    assert!(transport.sent > 100 && transport.received > 100);
    assert_eq!(run(&mut client, "one byte again"), (Ok(()), vec![]));
}
