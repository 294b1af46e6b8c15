//! The deadline governs every way a server can fail to answer, over real loopback sockets with
//! the built-in transport: nothing listening, a listener that never completes the handshake
//! (its accept queue full), a DNS server that never answers (in a private mount namespace whose
//! resolv.conf names it), and a server that trickles its bytes. Each attempt ends no later than
//! the deadline plus 1 s (a correctness bound, not a speed benchmark), and one that never
//! reached the service ends with the transport's cause, the address and the attempt count.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{device_key, emulator_config, register, sym_emulator, ID_SCOPE};
use dps_mqtt::config::Config;
use dps_mqtt::engine::{Client, Step};
use dps_mqtt::error::{ErrorClass, ErrorKind};
use dps_mqtt::hosted::{SystemClock, TcpTransport};
use serde_json::json;

/// How far past its deadline an attempt may end.
const SLACK: Duration = Duration::from_secs(1);

/// A config for a device that will never reach `host:port`, with this deadline and a quick
/// back-off (so that many more connects than the old cap of 5 fit in it).
fn config_for(host: &str, port: u16, deadline_ms: u64) -> Config {
    let mut cfg = Config {
        id_scope: Some(ID_SCOPE.parse().unwrap()),
        registration_id: Some("deadline-dev".parse().unwrap()),
        key: Some(device_key("deadline-dev")),
        host: host.parse().unwrap(),
        port: dps_mqtt::config::Port::new(port).unwrap(),
        ..Config::default()
    };
    cfg.timing.deadline_ms = deadline_ms;
    cfg.timing.backoff_initial_ms = 50;
    cfg.timing.backoff_max_ms = 200;
    cfg
}

/// Runs one registration; returns its error (it must fail) and how long it took.
fn failing_registration(cfg: &Config) -> (ErrorKind, String, Duration) {
    let started = Instant::now();
    let (code, outcome) = register(cfg);
    let elapsed = started.elapsed();
    let Some(Err(error)) = outcome.result else {
        panic!("the attempt did not fail: {code:?} {:?}", outcome.result);
    };
    assert_eq!(code, Err(error.kind));
    eprintln!("{elapsed:?}: {error}");
    (error.kind, error.to_string(), elapsed)
}

/// The attempt count in "HOST:PORT, N attempts in T ms: ...".
fn attempts(message: &str) -> u32 {
    let after = message.split(", ").nth(1).unwrap_or_default();
    after
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no attempt count in {message:?}"))
}

#[test]
fn nothing_listening_is_retried_until_the_deadline_and_reported_with_its_cause() {
    // Bound, never listening: every connect is refused at once.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (kind, message, elapsed) = failing_registration(&config_for("127.0.0.1", port, 3_000));
    assert_eq!(kind, ErrorKind::TransportConnect);
    assert!(
        elapsed >= Duration::from_millis(3_000),
        "gave up early: {elapsed:?}"
    );
    assert!(
        elapsed <= Duration::from_millis(3_000) + SLACK,
        "{elapsed:?}"
    );
    let prefix = format!("could not connect to the server: 127.0.0.1:{port}, ");
    assert!(message.starts_with(&prefix), "{message}");
    assert!(
        message.ends_with(" ms: Connection refused (os error 111)"),
        "{message}"
    );
    assert!(attempts(&message) > 5, "more than the old cap: {message}");
}

/// A loopback listener whose accept queue is full, so that the kernel drops further SYNs: a
/// connect to it neither succeeds nor fails, as with a host that drops packets.
struct Blackhole {
    port: u16,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl Blackhole {
    fn new() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(e) => panic!("filling the accept queue: {e}"),
            }
            assert!(queued.len() < 10_000, "the accept queue never filled");
        }
        Blackhole {
            port: addr.port(),
            _listener: listener,
            _queued: queued,
        }
    }
}

#[test]
fn a_listener_that_never_completes_the_handshake_is_bounded_by_the_deadline() {
    let hole = Blackhole::new();
    let (kind, message, elapsed) = failing_registration(&config_for("127.0.0.1", hole.port, 2_500));
    assert_eq!(kind.class(), ErrorClass::Transport, "{message}");
    assert!(
        elapsed <= Duration::from_millis(2_500) + SLACK,
        "{elapsed:?}"
    );
    assert!(
        message.starts_with(&format!(
            "could not connect to the server: 127.0.0.1:{}, ",
            hole.port
        )),
        "{message}"
    );
    assert!(
        message.ends_with(": no answer from the server"),
        "{message}"
    );
}

/// How long one `step` may stay in the library while a connect is under way: the connect is
/// non-blocking, so a caller's event loop (Ctrl-C, cancel) never waits for the handshake.
const STEP_BOUND: Duration = Duration::from_millis(500);

#[test]
fn a_connect_that_never_completes_never_blocks_a_step() {
    let hole = Blackhole::new();
    let cfg = config_for("127.0.0.1", hole.port, 2_500);
    let mut client = Client::new(
        cfg.settings().unwrap(),
        TcpTransport::default(),
        SystemClock::default(),
    )
    .unwrap();
    let started = Instant::now();
    let mut steps = 0u32;
    let mut waited_on_socket = false;
    let result = loop {
        let before = Instant::now();
        let step = client.step();
        let took = before.elapsed();
        assert!(took < STEP_BOUND, "step {steps} took {took:?}");
        steps += 1;
        match step {
            Step::Finished(result) => break result,
            Step::Pending { next_call_ms } => {
                // The connect's socket is there to wait on, for writability.
                if client.socket().is_some() && client.wants_write() {
                    waited_on_socket = true;
                }
                client.wait(next_call_ms);
            }
        }
    };
    let elapsed = started.elapsed();
    assert_eq!(result, Err(ErrorKind::TransportConnect));
    assert!(
        elapsed <= Duration::from_millis(2_500) + SLACK,
        "{elapsed:?}"
    );
    assert!(waited_on_socket, "no socket to wait on while connecting");
    let Some(Err(error)) = &client.outcome().result else {
        panic!("the attempt did not fail: {:?}", client.outcome().result);
    };
    let message = error.to_string();
    eprintln!("{steps} steps in {elapsed:?}: {message}");
    assert!(
        message.starts_with(&format!(
            "could not connect to the server: 127.0.0.1:{}, 1 attempt in ",
            hole.port
        )),
        "{message}"
    );
    assert!(
        message.ends_with(": no answer from the server"),
        "{message}"
    );
}

/// Forwards TCP connections to `target`, the server's bytes one at a time, `gap` apart, after
/// the first `fast` of each connection (changeable while it runs). Counts the server's bytes of
/// the last connection in `forwarded`.
struct TricklingProxy {
    port: u16,
    fast: Arc<AtomicUsize>,
    forwarded: Arc<AtomicUsize>,
}

impl TricklingProxy {
    fn start(target: u16, fast: usize, gap: Duration) -> TricklingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let fast = Arc::new(AtomicUsize::new(fast));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let (fast_limit, count) = (fast.clone(), forwarded.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)) else {
                    return;
                };
                let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
                    return;
                };
                thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                    let _ = s2.shutdown(std::net::Shutdown::Write);
                });
                let (fast_limit, count) = (fast_limit.clone(), count.clone());
                count.store(0, Ordering::SeqCst);
                thread::spawn(move || {
                    let mut byte = [0u8; 1];
                    let mut sent = 0usize;
                    while server.read_exact(&mut byte).is_ok() {
                        if sent >= fast_limit.load(Ordering::SeqCst) {
                            thread::sleep(gap);
                        }
                        if client.write_all(&byte).is_err() {
                            return;
                        }
                        sent += 1;
                        count.store(sent, Ordering::SeqCst);
                    }
                });
            }
        });
        TricklingProxy {
            port,
            fast,
            forwarded,
        }
    }
}

#[test]
fn a_server_trickling_its_handshake_is_bounded_by_the_deadline() {
    let name = "trickle-dev";
    let emu = sym_emulator(name, json!({}), &[]);
    let mut cfg = emulator_config(&emu, Some(name), device_key(name));
    let proxy = TricklingProxy::start(emu.port, 0, Duration::from_millis(20));
    cfg.port = dps_mqtt::config::Port::new(proxy.port).unwrap();
    cfg.timing.deadline_ms = 2_500;
    let (kind, message, elapsed) = failing_registration(&cfg);
    assert!(
        elapsed <= Duration::from_millis(2_500) + SLACK,
        "{elapsed:?}"
    );
    assert_eq!(kind, ErrorKind::TransportConnect, "{message}");
    assert!(
        message.ends_with("the server answered but sent no CONNACK"),
        "{message}"
    );
}

#[test]
fn a_service_trickling_its_answer_after_connack_times_out_at_the_deadline() {
    let name = "trickle-late-dev";
    let emu = sym_emulator(name, json!({}), &[]);
    let mut cfg = emulator_config(&emu, Some(name), device_key(name));
    // A clean session through the proxy at full speed gives the server's byte count; then all
    // but the last bytes (inside the record that carries the assignment) pass at full speed,
    // CONNACK among them, and the rest trickles.
    let proxy = TricklingProxy::start(emu.port, usize::MAX, Duration::from_millis(300));
    cfg.port = dps_mqtt::config::Port::new(proxy.port).unwrap();
    assert_eq!(register(&cfg).0, Ok(()));
    let total = proxy.forwarded.load(Ordering::SeqCst);
    proxy.fast.store(total.saturating_sub(40), Ordering::SeqCst);
    cfg.timing.deadline_ms = 3_000;
    let (kind, message, elapsed) = failing_registration(&cfg);
    assert!(
        elapsed <= Duration::from_millis(3_000) + SLACK,
        "{elapsed:?}"
    );
    assert_eq!(kind.class(), ErrorClass::Timeout, "{message}");
}

/// The silent DNS server's address: a loopback address of its own, so nothing else on the
/// machine answers there.
const SILENT_DNS: &str = "127.0.0.77";
const CHILD_ENV: &str = "DPS_DEADLINE_DNS_CHILD";
const UNRESOLVABLE: &str = "dps-deadline.example";

#[test]
fn dns_that_never_answers_is_bounded_by_the_deadline() {
    let dns = UdpSocket::bind((SILENT_DNS, 53)).unwrap_or_else(|e| {
        panic!("a silent DNS server needs {SILENT_DNS}:53, which takes root (CI runs as root): {e}")
    });
    dns.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let listener = {
        let (queries, done) = (queries.clone(), done.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !done.load(Ordering::Relaxed) {
                if dns.recv_from(&mut buf).is_ok() {
                    queries.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let dir = std::env::temp_dir().join(format!("dps-deadline-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let resolv = dir.join("resolv.conf");
    // glibc's defaults (5 s per try, 2 tries) would take 10 s for each name.
    std::fs::write(
        &resolv,
        format!("nameserver {SILENT_DNS}\noptions timeout:5 attempts:2\n"),
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--", "sh", "-c"])
        .arg(r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#)
        .arg(&resolv)
        .arg(&exe)
        .args([
            "--exact",
            "dns_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs unshare (util-linux) and mount, run as root: {e}")
        });
    done.store(true, Ordering::Relaxed);
    listener.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("in the mount namespace: {stderr}");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the registration in the mount namespace failed (unshare --mount and mount --bind, if \
         they are what failed, need root):\n{stdout}\n{stderr}"
    );
    assert!(
        queries.load(Ordering::Relaxed) > 0,
        "the resolver never asked the silent DNS server:\n{stderr}"
    );
}

/// Run by `dns_that_never_answers_is_bounded_by_the_deadline` in a mount namespace whose
/// resolv.conf names a DNS server that never answers.
#[test]
#[ignore = "run by dns_that_never_answers_is_bounded_by_the_deadline in its mount namespace"]
fn dns_child() {
    assert_eq!(
        std::env::var(CHILD_ENV).as_deref(),
        Ok("1"),
        "run only inside dns_that_never_answers_is_bounded_by_the_deadline"
    );
    let (kind, message, elapsed) = failing_registration(&config_for(UNRESOLVABLE, 8883, 2_000));
    assert!(
        elapsed <= Duration::from_millis(2_000) + SLACK,
        "{elapsed:?}"
    );
    assert_eq!(kind, ErrorKind::TransportConnect, "{message}");
    assert!(
        message.starts_with(&format!(
            "could not connect to the server: {UNRESOLVABLE}:8883, 1 attempt in "
        )),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            "cannot resolve {UNRESOLVABLE}: no answer from the name server within 2000 ms"
        )),
        "{message}"
    );
}
