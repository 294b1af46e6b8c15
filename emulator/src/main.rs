//! dps-emulator: a local Azure IoT Device Provisioning Service for tests and firmware CI.
//! MQTT 3.1.1 over TLS (and over WebSocket over TLS), SAS and X.509 device authentication,
//! enrollments and scripted scenarios read from a JSON file.

mod certs;
mod enrollments;
mod log;
mod server;
mod tls;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use enrollments::{AuthFailure, EnrollmentFile};
use server::{ConnectionLog, Limits, PeerCert, State, Wire};
use tls::DeviceCertVerifier;

const WS_PATH: &str = "/$iothub/websocket";
/// At SIGTERM: how long open connections get to end and log, and the log to be written.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Without `--backlog` and without a readable system limit.
const DEFAULT_BACKLOG: u32 = 4096;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ServerKeyArg {
    /// RSA-2048, as the service presents.
    Rsa,
    /// ECDSA P-256.
    Ecdsa,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AuthFailureArg {
    #[value(name = "401")]
    Response401,
    Connack,
}

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Local Azure IoT Device Provisioning Service emulator (MQTT over TLS and WebSocket)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Debug, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// MQTT over TLS port (0 = any free port; the real one is printed).
    #[arg(long, default_value_t = 8883)]
    port: u16,
    /// MQTT over WebSocket over TLS port (path /$iothub/websocket, subprotocol mqtt).
    #[arg(long)]
    ws_port: Option<u16>,
    /// Where the test CA, server certificate and device CA live (created on first run).
    #[arg(long, default_value = "dps-emulator-certs")]
    cert_dir: PathBuf,
    /// Enrollment file (JSON). Without it every device is unauthorized.
    #[arg(long)]
    enrollments: Option<PathBuf>,
    /// Append one JSON line per connection to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Offer TLS 1.2 only, like the service today.
    #[arg(long)]
    tls12_only: bool,
    /// How bad credentials are answered: CONNACK 0 then 401 on the first request (the
    /// service's usual way), or CONNACK 5. Overrides the enrollment file's `authFailure`;
    /// an enrollment's own `authFailure` overrides both. [default: 401]
    #[arg(long, value_enum)]
    auth_failure: Option<AuthFailureArg>,
    /// The server certificate's key: RSA-2048 (as the service) or ECDSA P-256. Both are
    /// signed by the same CA (`ca.pem`).
    #[arg(long, value_enum, default_value = "rsa")]
    server_key: ServerKeyArg,
    /// Seconds for the TLS (and WebSocket) handshake and the CONNECT together; also the
    /// longest silence allowed before the credentials are accepted, whatever the keep-alive.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    connect_timeout: u64,
    /// Connections served at once; beyond it new connections are closed at once (one line on
    /// stderr when the limit is reached).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Listen backlog [default: the system's limit, /proc/sys/net/core/somaxconn].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    backlog: Option<u32>,
    /// Registration operations kept for polling (one per registration id; the oldest are
    /// forgotten beyond this).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_operations: u64,
    /// Bytes of request payloads and issued certificates kept by those operations.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_retained_bytes: u64,
    /// Log lines waiting for the writer; beyond it lines are dropped and counted.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    log_queue: u32,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve (the default).
    Serve(ServeArgs),
    /// Issue a device certificate (CN = registration id) signed by the device CA.
    IssueDeviceCert {
        /// The emulator's certificate directory (the device CA is created there if missing).
        #[arg(long, default_value = "dps-emulator-certs")]
        cert_dir: PathBuf,
        /// Becomes the certificate's CN.
        #[arg(long)]
        registration_id: String,
        /// PEM file to write: the device certificate, then the device CA.
        #[arg(long)]
        cert_out: PathBuf,
        /// PEM file to write: the PKCS#8 private key.
        #[arg(long)]
        key_out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Issue a certificate that expired yesterday.
        #[arg(long)]
        expired: bool,
    },
}

fn main() {
    // Panics (mqttrs indexes into hostile packets) are contained per connection: one line each.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("dps-emulator: internal error, connection closed: {info}");
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::IssueDeviceCert {
            registration_id, ..
        }) if !server::valid_registration_id(&registration_id) => Err(format!(
            "{registration_id:?} is not a valid registration id (up to 128 of a-z A-Z 0-9 - . _ :, \
             ending alphanumeric or -)"
        )
        .into()),
        Some(Command::IssueDeviceCert {
            cert_dir,
            registration_id,
            cert_out,
            key_out,
            days,
            expired,
        }) => certs::issue_device_cert(
            &cert_dir,
            &registration_id,
            &cert_out,
            &key_out,
            days,
            expired,
        )
        .map(|()| {
            println!("dps-emulator: device certificate: {}", cert_out.display());
            println!("dps-emulator: device key: {}", key_out.display());
        }),
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    };
    if let Err(e) = result {
        eprintln!("dps-emulator: error: {e}");
        std::process::exit(1);
    }
}

/// The system's accept-queue limit (the kernel silently caps any larger backlog to it).
fn system_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_BACKLOG)
}

fn listen(bind: &str, port: u16, backlog: u32) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in std::net::ToSocketAddrs::to_socket_addrs(&(bind, port))? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other(format!("{bind}: no address"))))
}

fn serve(args: ServeArgs) -> Result<(), certs::AnyError> {
    let _ = rlimit::increase_nofile_limit(65_536);
    let server_key = match args.server_key {
        ServerKeyArg::Rsa => certs::KeyKind::Rsa,
        ServerKeyArg::Ecdsa => certs::KeyKind::Ecdsa,
    };
    let pki = certs::load_or_create(&args.cert_dir, server_key)?;
    let enrollments = match &args.enrollments {
        Some(path) => EnrollmentFile::load(path)?,
        None => EnrollmentFile::default(),
    };
    let log = match &args.log {
        Some(path) => Some(log::Log::open(path, args.log_queue as usize)?),
        None => None,
    };
    let auth_failure = match args.auth_failure {
        Some(AuthFailureArg::Response401) => Some(AuthFailure::Response401),
        Some(AuthFailureArg::Connack) => Some(AuthFailure::Connack),
        None => None,
    };
    let cert_dir = args.cert_dir.canonicalize()?;
    let limits = Limits {
        connect_timeout: Duration::from_secs(args.connect_timeout),
        max_operations: usize::try_from(args.max_operations).unwrap_or(usize::MAX),
        max_retained_bytes: usize::try_from(args.max_retained_bytes).unwrap_or(usize::MAX),
    };
    let state = Arc::new(State::new(enrollments, auth_failure, cert_dir, log, limits));
    let backlog = args.backlog.unwrap_or_else(system_backlog);

    let (tls, verifier) = tls::server_config(&pki, args.tls12_only)?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mqtt = listen(&args.bind, args.port, backlog)?;
        let ws = match args.ws_port {
            Some(p) => Some(listen(&args.bind, p, backlog)?),
            None => None,
        };
        // Installed before `ready`, so a SIGTERM right after it still ends the process cleanly.
        let shutdown = shutdown_signal()?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "dps-emulator: CA certificate: {}",
            pki.ca_path.display()
        )?;
        writeln!(
            out,
            "dps-emulator: device CA certificate: {}",
            pki.device_ca_path.display()
        )?;
        writeln!(out, "dps-emulator: listening mqtts {}", mqtt.local_addr()?)?;
        if let Some(ws) = &ws {
            writeln!(out, "dps-emulator: listening wss {}", ws.local_addr()?)?;
        }
        writeln!(out, "dps-emulator: ready")?;
        out.flush()?;
        drop(out);

        let ctx = Arc::new(Context {
            acceptor,
            state: state.clone(),
            verifier,
            slots: Arc::new(Semaphore::new(args.max_connections as usize)),
            max_connections: args.max_connections,
            refused: std::sync::atomic::AtomicU64::new(0),
            at_limit: std::sync::atomic::AtomicBool::new(false),
        });
        let mut loops = vec![tokio::spawn(accept_loop(mqtt, ctx.clone(), false))];
        if let Some(ws) = ws {
            loops.push(tokio::spawn(accept_loop(ws, ctx.clone(), true)));
        }
        shutdown.await;
        for l in &loops {
            l.abort();
        }
        // Open connections end with outcome `server-shutdown` and log their line; every slot
        // back means every connection is done.
        state.shutdown.send_replace(true);
        let open =
            tokio::time::timeout(SHUTDOWN_GRACE, ctx.slots.acquire_many(args.max_connections))
                .await
                .is_err();
        let log = state.log.as_ref().map(|log| log.finish(SHUTDOWN_GRACE));
        summary(&state, &ctx, open, log.as_ref());
        Ok::<(), certs::AnyError>(())
    })
}

/// One line on stderr at shutdown: what was served, and what the log lost.
fn summary(state: &State, ctx: &Context, still_open: bool, log: Option<&log::Summary>) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut line = format!(
        "dps-emulator: shutdown: {} connections served, {} refused at --max-connections",
        state.connections.load(Relaxed),
        ctx.refused.load(Relaxed)
    );
    if still_open {
        line.push_str(", some still open after the grace period");
    }
    if let (Some(s), Some(l)) = (log, &state.log) {
        line.push_str(&format!(
            "; log {}: {} lines written, {} dropped (queue full), {} failed to write{}",
            l.path().display(),
            s.written,
            s.dropped,
            s.failed,
            if s.unflushed {
                ", the writer was still blocked"
            } else {
                ""
            }
        ));
    }
    // Not eprintln!: a closed stderr must not turn a clean shutdown into a panic.
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// What every connection task shares.
struct Context {
    acceptor: TlsAcceptor,
    state: Arc<State>,
    verifier: Arc<DeviceCertVerifier>,
    /// One permit per connection being served.
    slots: Arc<Semaphore>,
    max_connections: u32,
    refused: std::sync::atomic::AtomicU64,
    /// The limit was hit and not yet relieved: its line is written once per episode.
    at_limit: std::sync::atomic::AtomicBool,
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Context>, websocket: bool) {
    use std::sync::atomic::Ordering::Relaxed;
    loop {
        let (tcp, _peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors or similar: back off briefly instead of spinning.
                let _ = writeln!(std::io::stderr(), "dps-emulator: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = ctx.slots.clone().try_acquire_owned() else {
            ctx.refused.fetch_add(1, Relaxed);
            if !ctx.at_limit.swap(true, Relaxed) {
                // Written before the refused connection is closed.
                let _ = writeln!(
                    std::io::stderr(),
                    "dps-emulator: connection limit reached: {} connections open \
                     (--max-connections); new connections are closed until one ends",
                    ctx.max_connections
                );
            }
            drop(tcp);
            continue;
        };
        if ctx.at_limit.swap(false, Relaxed) {
            let _ = writeln!(
                std::io::stderr(),
                "dps-emulator: below the connection limit again; {} connections were refused \
                 so far",
                ctx.refused.load(Relaxed)
            );
        }
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            handle(tcp, &ctx, websocket, slot).await;
        });
    }
}

async fn handle(
    tcp: TcpStream,
    ctx: &Context,
    websocket: bool,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let state = &*ctx.state;
    let transport = if websocket { "wss" } else { "mqtts" };
    let mut log = ConnectionLog::new(transport);
    // One deadline for the handshake(s) and the CONNECT, however slowly the bytes arrive.
    let deadline = tokio::time::Instant::now() + state.limits.connect_timeout;
    let mut shutdown = state.shutdown.subscribe();
    if *shutdown.borrow_and_update() {
        log.set_outcome("server-shutdown");
        return log.finish(state).await;
    }
    let accept = tokio::time::timeout_at(deadline, ctx.acceptor.accept(tcp));
    let accepted = tokio::select! {
        a = accept => a,
        _ = shutdown.changed() => {
            log.set_outcome("server-shutdown (during the TLS handshake)");
            return log.finish(state).await;
        }
    };
    let tls = match accepted {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            log.set_outcome(format!("tls-error: {e}"));
            return log.finish(state).await;
        }
        Err(_) => {
            log.set_outcome("tls-timeout");
            return log.finish(state).await;
        }
    };
    let session = tls.get_ref().1;
    log.tls_version = match session.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => Some("1.3"),
        Some(rustls::ProtocolVersion::TLSv1_2) => Some("1.2"),
        _ => None,
    };
    log.tls_resumed = Some(session.handshake_kind() == Some(rustls::HandshakeKind::Resumed));
    let peer_cert = session.peer_certificates().map(|chain| PeerCert {
        common_name: chain.first().and_then(|leaf| certs::common_name(leaf)),
        trusted: ctx.verifier.trusted(chain),
    });
    if websocket {
        // tungstenite's callback signature returns its large error response by value.
        #[allow(clippy::result_large_err)]
        let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
            if req.uri().path() != WS_PATH {
                let mut err = ErrorResponse::new(Some("not found".into()));
                *err.status_mut() = StatusCode::NOT_FOUND;
                return Err(err);
            }
            let offers_mqtt = req
                .headers()
                .get_all("Sec-WebSocket-Protocol")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|p| p.trim() == "mqtt");
            if !offers_mqtt {
                let mut err = ErrorResponse::new(Some("subprotocol mqtt required".into()));
                *err.status_mut() = StatusCode::BAD_REQUEST;
                return Err(err);
            }
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
            Ok(resp)
        };
        let upgrade = tokio::time::timeout_at(
            deadline,
            tokio_tungstenite::accept_hdr_async_with_config(tls, callback, Some(ws_config())),
        );
        let upgraded = tokio::select! {
            u = upgrade => u,
            _ = shutdown.changed() => {
                log.set_outcome("server-shutdown (during the WebSocket handshake)");
                return log.finish(state).await;
            }
        };
        match upgraded {
            Ok(Ok(ws)) => server::serve(WsWire(ws), state, log, peer_cert, deadline, slot).await,
            Ok(Err(e)) => {
                log.set_outcome(format!("websocket-error: {e}"));
                log.finish(state).await;
            }
            Err(_) => {
                log.set_outcome("websocket-timeout");
                log.finish(state).await;
            }
        }
    } else {
        server::serve(TlsWire(tls), state, log, peer_cert, deadline, slot).await;
    }
}

struct TlsWire(TlsStream<TcpStream>);

impl Wire for TlsWire {
    async fn read(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.0.read(&mut chunk).await?;
        buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.write_all(data).await?;
        self.0.flush().await
    }

    async fn shutdown(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

/// Frames and messages bounded a little above the MQTT packet limit, so a hostile peer
/// cannot make the server buffer more.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(server::MAX_PACKET + 4096))
        .max_frame_size(Some(server::MAX_PACKET + 4096))
}

struct WsWire(WebSocketStream<TlsStream<TcpStream>>);

impl Wire for WsWire {
    async fn read(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        loop {
            match self.0.next().await {
                None => return Ok(0),
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                Some(Ok(Message::Binary(data))) => {
                    if data.is_empty() {
                        continue;
                    }
                    buf.extend_from_slice(&data);
                    return Ok(data.len());
                }
                Some(Ok(Message::Close(_))) => return Ok(0),
                Some(Ok(Message::Text(_))) => {
                    return Err(std::io::Error::other("text frame on an MQTT WebSocket"))
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0
            .send(Message::Binary(data.to_vec().into()))
            .await
            .map_err(std::io::Error::other)
    }

    async fn shutdown(&mut self) {
        let _ = self.0.close(None).await;
    }
}
