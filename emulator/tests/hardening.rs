//! Abuse that must not hurt the emulator, or a CI job it runs in: register floods, a log that
//! blocks or fails, trickled CONNECTs, long keep-alives before authorization, too many
//! connections, a `$rid` too long to answer, bad enrollment files, the listen backlog, and
//! connections still open at SIGTERM. Every test is bounded in count and time, loopback only.

mod common;

use std::time::Duration;

use common::*;
use mqttrs::Packet;
use serde_json::{json, Value};

fn register_op(c: &mut Client, reg: &str, payload: Option<Value>) -> String {
    let mut body = json!({ "registrationId": reg });
    if let Some(p) = payload {
        body["payload"] = p;
    }
    let (status, _, resp) = c.register("1", &body);
    assert_eq!(status, 202, "{resp}");
    resp["operationId"]
        .as_str()
        .expect("operationId")
        .to_owned()
}

fn connected(emu: &Emulator, reg: &str) -> Client {
    let mut c = Client::tls(emu);
    assert_eq!(c.connect_sas(reg, KEY), 0);
    c.subscribe();
    c
}

#[test]
fn a_new_register_request_replaces_the_devices_previous_operation() {
    let emu = Emulator::start(&[]);
    let mut c = connected(&emu, "dev-1");
    let first = register_op(&mut c, "dev-1", Some(json!({ "n": 1 })));
    let second = register_op(&mut c, "dev-1", Some(json!({ "n": 2 })));
    let (status, _, resp) = c.poll("p1", &first);
    assert_eq!(status, 404, "{resp}");
    let (status, _, resp) = c.poll("p2", &second);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["registrationState"]["payload"], json!({ "n": 2 }));
}

#[test]
fn operations_are_bounded_in_count_and_in_retained_bytes() {
    // Three devices, room for two operations: the oldest is forgotten.
    let emu = Emulator::start(&["--max-operations", "2"]);
    let devices = ["dev-1", "dev-custom", "dev-polls"];
    let mut ops = Vec::new();
    for reg in devices {
        let mut c = connected(&emu, reg);
        ops.push((c.poll_op(reg), reg));
    }
    let mut c = connected(&emu, "dev-1");
    let (status, _, _) = c.poll("p", &ops[0].0);
    assert_eq!(status, 404);
    let mut c = connected(&emu, "dev-custom");
    let (status, _, resp) = c.poll("p", &ops[1].0);
    assert_eq!(status, 200, "{resp}");

    // Two 90 KB payloads do not fit in 150,000 bytes: the first is forgotten.
    let emu = Emulator::start(&["--max-retained-bytes", "150000"]);
    let big = json!({ "blob": "x".repeat(90_000) });
    let mut a = connected(&emu, "dev-1");
    let first = register_op(&mut a, "dev-1", Some(big.clone()));
    let mut b = connected(&emu, "dev-custom");
    let second = register_op(&mut b, "dev-custom", Some(big.clone()));
    let (status, _, _) = a.poll("p", &first);
    assert_eq!(status, 404);
    let (status, _, resp) = b.poll("p", &second);
    assert_eq!(status, 200);
    assert_eq!(resp["registrationState"]["payload"], big);
}

impl Client {
    /// Registers `reg` and returns the operation id.
    fn poll_op(&mut self, reg: &str) -> String {
        register_op(self, reg, None)
    }
}

/// A 4 KB `ClientVersion` makes every log line about 4 KB, so a pipe fills in a few dozen
/// connections.
fn connect_with_long_client_version(emu: &Emulator) -> Client {
    let mut c = Client::tls(emu);
    let user = format!(
        "{SCOPE}/registrations/dev-1/api-version=2019-03-31&ClientVersion={}",
        "v".repeat(4096)
    );
    let token = sas_token(SCOPE, "dev-1", KEY, now() + 3600, false);
    c.connect_raw("dev-1", Some(&user), Some(&token));
    assert_eq!(c.connack(), 0);
    c
}

#[test]
fn a_log_nobody_reads_does_not_stall_the_server_and_drops_are_counted() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = temp_dir("fifo");
    let fifo = dir.join("log.fifo");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(ok.success());
    // A reader that never reads: the emulator's open succeeds, its writes fill the pipe.
    const O_NONBLOCK: i32 = 0o4000;
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(&fifo)
        .expect("open the FIFO's read end");
    let emu = Emulator::start_logging_to(&fifo, &["--log-queue", "8"]);
    // 64 KiB of pipe, 8 queued lines, one line being written: 40 lines of 4 KB overflow it.
    for _ in 0..40 {
        let mut c = connect_with_long_client_version(&emu);
        c.send(&Packet::Disconnect);
        assert_eq!(c.recv(), Rx::Closed);
    }
    // Still serving, promptly: new handshakes and a whole registration.
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    let (status, _) = c.provision("dev-1", None);
    assert_eq!(status, 200);
    drop(c);
    let (exit, stderr) = emu.terminate_for_stderr();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(exit.success(), "{exit:?} {stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("dps-emulator: shutdown:"))
        .unwrap_or_else(|| panic!("no shutdown summary in {stderr:?}"));
    let dropped: u64 = summary
        .split(" dropped (queue full)")
        .next()
        .and_then(|s| s.rsplit(", ").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no drop count in {summary:?}"));
    assert!(dropped > 0, "{summary}");
}

#[test]
fn a_log_on_a_full_disk_says_so_and_counts_the_lines() {
    let emu = Emulator::start_logging_to(std::path::Path::new("/dev/full"), &[]);
    let mut c = Client::tls(&emu);
    assert_eq!(c.connect_sas("dev-1", KEY), 0);
    c.send(&Packet::Disconnect);
    assert_eq!(c.recv(), Rx::Closed);
    let (exit, stderr) = emu.terminate_for_stderr();
    assert!(exit.success(), "{exit:?}");
    assert!(
        stderr.contains("log /dev/full: No space left on device"),
        "{stderr}"
    );
    assert!(stderr.contains("1 failed to write"), "{stderr}");
}

#[test]
fn an_unwritable_log_stops_the_start_naming_the_file() {
    let dir = temp_dir("badlog");
    let log = dir.join("no-such-dir").join("log.jsonl");
    let out = std::process::Command::new(binary())
        .args(["--port", "0", "--cert-dir"])
        .arg(dir.join("certs"))
        .arg("--log")
        .arg(&log)
        .output()
        .expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&*log.to_string_lossy()), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
}

#[test]
fn a_trickled_connect_gets_one_deadline_for_handshake_and_connect() {
    let emu = Emulator::start(&["--connect-timeout", "2"]);
    let mut c = Client::tls(&emu);
    // A CONNECT announcing 90,000 bytes, then one byte every 250 ms: each byte comes well
    // within 2 s of the last, but the whole CONNECT never does.
    c.write_raw(&[0x10, 0x90, 0xbf, 0x05]).expect("write");
    c.set_read_timeout(Duration::from_millis(250));
    let mut closed = false;
    for _ in 0..40 {
        match c.read_once() {
            Some(false) => {
                closed = true;
                break;
            }
            Some(true) => panic!("the server answered a partial CONNECT"),
            None => {
                if c.write_raw(&[0]).is_err() {
                    closed = true;
                    break;
                }
            }
        }
    }
    assert!(closed, "still open after 10 s of trickling");
    drop(c);
    let (_, log) = emu.terminate();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["outcome"], "timeout");
}

#[test]
fn before_authorization_a_long_keep_alive_buys_no_more_than_the_connect_timeout() {
    let emu = Emulator::start(&["--connect-timeout", "2"]);
    // Wrong key: CONNACK 0, and the 401 waits for a request that never comes.
    let mut c = Client::tls(&emu);
    let token = sas_token(SCOPE, "dev-1", OTHER_KEY, now() + 3600, false);
    c.connect_with(
        1200,
        true,
        "dev-1",
        Some(&username(SCOPE, "dev-1")),
        Some(&token),
    );
    assert_eq!(c.connack(), 0);
    assert_eq!(c.recv(), Rx::Closed);
    // An accepted device keeps its keep-alive: still open after the connect timeout.
    let mut ok = Client::tls(&emu);
    let token = sas_token(SCOPE, "dev-1", KEY, now() + 3600, false);
    ok.connect_with(
        1200,
        true,
        "dev-1",
        Some(&username(SCOPE, "dev-1")),
        Some(&token),
    );
    assert_eq!(ok.connack(), 0);
    ok.set_read_timeout(Duration::from_secs(3));
    assert_eq!(ok.read_once(), None, "an accepted device was closed");
    ok.set_read_timeout(READ_TIMEOUT);
    ok.ping();
    drop(ok);
    let (_, log) = emu.terminate();
    assert_eq!(log[0]["outcome"], "timeout", "{log:?}");
}

#[test]
fn max_connections_closes_new_connections_with_one_line_and_recovers() {
    let emu = Emulator::start(&["--max-connections", "3"]);
    let mut open: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = Client::tls(&emu);
            assert_eq!(c.connect_sas("dev-1", KEY), 0);
            c
        })
        .collect();
    for _ in 0..2 {
        let refused = Client::tls_with(&emu, &TlsOptions::default());
        assert!(refused.is_err(), "a fourth connection was served");
    }
    let stderr = emu.stderr();
    assert_eq!(
        stderr
            .matches("connection limit reached: 3 connections open (--max-connections)")
            .count(),
        1,
        "{stderr}"
    );
    let mut c = open.pop().expect("client");
    c.send(&Packet::Disconnect);
    assert_eq!(c.recv(), Rx::Closed);
    let mut again = Client::tls(&emu);
    assert_eq!(again.connect_sas("dev-1", KEY), 0);
    let (status, _) = again.provision("dev-1", None);
    assert_eq!(status, 200);
    assert!(emu
        .stderr()
        .contains("below the connection limit again; 2 connections were refused"));
}

#[test]
fn a_rid_too_long_to_answer_closes_the_connection() {
    let emu = Emulator::start(&[]);
    let mut c = connected(&emu, "dev-1");
    // A 65,535-byte request topic: its response topic cannot be encoded.
    let rid = "r".repeat(65_490);
    let topic = format!("$dps/registrations/PUT/iotdps-register/?$rid={rid}");
    assert_eq!(topic.len(), 65_535);
    c.publish(&topic, br#"{"registrationId":"dev-1"}"#);
    assert_eq!(c.recv(), Rx::Closed);
    // A long one that fits is answered.
    let mut c = connected(&emu, "dev-1");
    let rid = "r".repeat(60_000);
    let (status, params, _) = c.register(&rid, &json!({ "registrationId": "dev-1" }));
    assert_eq!(status, 202);
    assert_eq!(param(&params, "$rid"), Some(rid.as_str()));
    drop(c);
    let (_, log) = emu.terminate();
    assert!(
        log[0]["outcome"]
            .as_str()
            .is_some_and(|o| o.contains("$rid of 65490 bytes")),
        "{log:?}"
    );
}

fn start_error(enrollments: &str) -> String {
    use std::io::BufRead;
    let dir = temp_dir("bad-enrollments");
    let file = dir.join("e.json");
    std::fs::write(&file, enrollments).expect("write");
    let mut child = std::process::Command::new(binary())
        .args(["--port", "0", "--cert-dir"])
        .arg(dir.join("certs"))
        .arg("--enrollments")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    // Stdout ends when the process does, or says `ready` when it wrongly started.
    let stdout = child.stdout.take().expect("stdout");
    let started = std::io::BufReader::new(stdout)
        .lines()
        .any(|l| l.is_ok_and(|l| l == "dps-emulator: ready"));
    if started {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("wait");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!started, "started with {enrollments}");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_array_or_an_empty_key_in_the_enrollment_file_stops_the_start() {
    let err = start_error("[]");
    assert!(
        err.contains("must be a JSON object") && err.contains("found an array"),
        "{err}"
    );
    let err = start_error(
        r#"{ "idScope": "0ne1", "enrollments": [ { "registrationId": "dev-a",
             "attestation": { "type": "symmetricKey", "primaryKey": "" } } ] }"#,
    );
    assert!(
        err.contains(r#"enrollments entry "dev-a": attestation.primaryKey is empty"#),
        "{err}"
    );
    let err = start_error(&format!(
        r#"{{ "idScope": "0ne1", "groups": [ {{ "groupId": "g",
             "attestation": {{ "type": "symmetricKey", "primaryKey": "{KEY}", "secondaryKey": "" }} }} ] }}"#
    ));
    assert!(
        err.contains(r#"groups entry "g": attestation.secondaryKey is empty"#),
        "{err}"
    );
}

/// The listening socket's backlog as the kernel reports it (`ss`: Send-Q of a listener).
fn listen_backlog(port: u16) -> u32 {
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields
        .get(2)
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("no listener on {port} in {text:?}"))
}

#[test]
fn the_listen_backlog_follows_the_system_limit_or_the_flag() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("somaxconn")
        .trim()
        .parse()
        .expect("number");
    let emu = Emulator::start(&[]);
    assert_eq!(listen_backlog(emu.port), somaxconn);
    let emu = Emulator::start(&["--backlog", "1000"]);
    // The kernel caps a backlog at somaxconn.
    assert_eq!(listen_backlog(emu.port), 1000.min(somaxconn));
}

#[test]
fn connections_open_at_sigterm_get_their_log_line() {
    let emu = Emulator::start(&[]);
    let mut c = connected(&emu, "dev-1");
    register_op(&mut c, "dev-1", None);
    // One more through its TLS handshake (the server has answered it) but without a CONNECT.
    let mut quiet = Client::tls(&emu);
    let (exit, log) = emu.terminate();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(c.recv(), Rx::Closed);
    assert_eq!(quiet.recv(), Rx::Closed);
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log.iter().all(|l| l["outcome"] == "server-shutdown"),
        "{log:?}"
    );
    let registered = log
        .iter()
        .find(|l| l["registrationId"] == "dev-1")
        .expect("the registered connection's line");
    assert_eq!(registered["packetsIn"]["PUBLISH"], 1);
}
