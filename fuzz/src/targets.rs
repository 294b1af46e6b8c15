//! The checks every fuzz target runs, shared with `tests/fuzz_corpus.rs` so stable Rust runs the
//! seed corpus through them without libFuzzer. Each must never panic, whatever the bytes.

use dps_mqtt::dps::protocol;
use dps_mqtt::dps::sas::{HexCase, KeySigner};
use dps_mqtt::engine::{Action, Credential, Engine, Event, Settings, Timing};
use dps_mqtt::error::{Error, ErrorKind};
use dps_mqtt::layers::mqtt::{ConnectOptions, MqttSession, QoS, DEFAULT_MAX_PACKET_SIZE};
use dps_mqtt::layers::FramingFactory;

const KEY: &str = "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=";

/// Server→client bytes into a session that has queued CONNECT and the engine's SUBSCRIBE. The first byte chooses the split:
/// 0 feeds everything at once, n feeds n-byte pieces, so packet boundaries fall anywhere.
pub fn mqtt_stream(data: &[u8]) {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let mut session = MqttSession::new(DEFAULT_MAX_PACKET_SIZE);
    session.set_now(0);
    let queued = session.connect(&ConnectOptions {
        client_id: "dev-1".into(),
        username: "0ne00000001/registrations/dev-1/api-version=2019-03-31".into(),
        password: Some(b"SharedAccessSignature sr=x&sig=y&se=1".to_vec().into()),
        keep_alive_secs: 60,
    });
    let subscribed = session.subscribe(protocol::SUBSCRIBE_FILTER, QoS::AtLeastOnce);
    assert!(
        queued.is_ok() && subscribed.is_ok(),
        "CONNECT and SUBSCRIBE with fixed options must queue"
    );
    drop(session.take_output());
    let piece = if split == 0 {
        stream.len().max(1)
    } else {
        usize::from(split)
    };
    let mut now = 0;
    for chunk in stream.chunks(piece) {
        now += 1;
        session.set_now(now);
        let fed = session.handle_input(chunk);
        while session.poll_event().is_some() {}
        drop(session.take_output());
        if fed.is_err() {
            return;
        }
    }
    if let Some(t) = session.next_timeout() {
        let _ = session.handle_timeout(t.max(now));
        drop(session.take_output());
    }
}

/// `topic '\n' body` into the response parsers.
pub fn response(data: &[u8]) {
    let mut parts = data.splitn(2, |&b| b == b'\n');
    let topic = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let topic = String::from_utf8_lossy(topic);
    if let Ok(t) = protocol::parse_response_topic(&topic) {
        assert!(t.status <= 999, "status has at most three digits: {t:?}");
    }
    let _ = protocol::parse_operation_status(body);
    let _ = protocol::parse_error_envelope(body);
}

fn fuzz_engine() -> Engine {
    let signer = KeySigner::from_base64(KEY);
    let Ok(signer) = signer else {
        panic!("fixed test key must decode");
    };
    let settings = Settings {
        id_scope: "0ne00000001".parse().unwrap(),
        registration_id: "dev-1".parse().unwrap(),
        credential: Credential::Sas(Box::new(signer)),
        host: "dps.example".parse().unwrap(),
        port: 8883,
        api_version: protocol::DEFAULT_API_VERSION.parse().unwrap(),
        client_version: None,
        payload: Some(r#"{"a":1}"#.parse().unwrap()),
        framing: FramingFactory::Plain,
        route: Default::default(),
        timing: Timing::default(),
        max_packet_size: DEFAULT_MAX_PACKET_SIZE,
        hex_case: HexCase::Lower,
        csr_b64: None,
        // Reproducible runs: a fixed source (the fuzzer's input decides everything else).
        entropy: std::sync::Arc::new(|buf: &mut [u8]| {
            buf.fill(0x5a);
            Ok(())
        }),
    };
    match Engine::new(settings) {
        Ok(e) => e,
        Err(e) => panic!("fixed settings must be valid: {e}"),
    }
}

/// Whatever the server sends, one step's output and each log line stay within this: the client
/// only sends its own small packets, and logs quote at most one received packet.
const STEP_BOUND: usize = 2 * DEFAULT_MAX_PACKET_SIZE;

/// The fuzzer's peer: accepts every dial at once and discards what the client sends.
fn serve(engine: &mut Engine, now: u64) {
    while let Some(action) = engine.poll_action() {
        match action {
            Action::Connect { .. } => engine.on_connected(now),
            Action::Close => {}
        }
    }
    let sent = engine.take_transmit().len();
    assert!(sent <= STEP_BOUND, "{sent} bytes to send in one step");
    while let Some(event) = engine.poll_event() {
        if let Event::Log(_, text) = event {
            assert!(text.len() <= STEP_BOUND, "{}-byte log line", text.len());
        }
    }
}

/// Fires the engine's earliest timer; checks it never lies beyond the attempt's deadline.
fn fire_timer(engine: &mut Engine, now: &mut u64, deadline: u64) {
    if let Some(t) = engine.next_timeout() {
        assert!(t <= deadline, "timer at {t} past the deadline {deadline}");
        *now = t.max(*now);
        engine.handle_timeout(*now);
    }
}

/// The whole engine (plain framing) after `on_connected`, driven by records:
/// `op len bytes…`. `op % 4`: 0 and 1 feed the `len` bytes as server output, 2 fires the next
/// timer, 3 drops the connection. Afterwards the timers run out; the attempt must end with a
/// result by its deadline.
pub fn engine(data: &[u8]) {
    const START: u64 = 1_000;
    let mut engine = fuzz_engine();
    engine.set_unix_time(1_700_000_000);
    assert!(engine.start(START).is_ok(), "a fresh engine starts");
    let deadline = START + Timing::default().deadline_ms;
    let mut now = START;
    serve(&mut engine, now);
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        match op % 4 {
            0 | 1 => {
                let Some((&len, tail)) = tail.split_first() else {
                    break;
                };
                let (bytes, tail) = tail.split_at(usize::from(len).min(tail.len()));
                engine.handle_input(now, bytes);
                rest = tail;
            }
            2 => {
                fire_timer(&mut engine, &mut now, deadline);
                rest = tail;
            }
            _ => {
                engine.on_connection_lost(
                    now,
                    Error::new(ErrorKind::TransportClosed, "fuzz peer closed"),
                );
                rest = tail;
            }
        }
        serve(&mut engine, now);
    }
    // Each timer either ends the attempt or moves time forward; this bound is far above the
    // keep-alives, back-offs and polls that fit in one deadline.
    for _ in 0..100_000 {
        if !engine.is_running() {
            break;
        }
        fire_timer(&mut engine, &mut now, deadline);
        serve(&mut engine, now);
    }
    assert!(!engine.is_running(), "still running at {now} ms");
    assert!(
        now <= deadline,
        "ended at {now}, after the deadline {deadline}"
    );
    assert!(engine.outcome().result.is_some(), "ended without a result");
}
