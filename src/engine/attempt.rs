//! The attempt: the registration's progress, independent of any connection. The register
//! request, the status polls, `$rid` matching, and what each response means.

use super::link::Link;
use super::retry;
use super::{Engine, Level, Status};
use crate::dps::protocol::{self, RegistrationStatus, RetryAfter};
use crate::error::{Error, ErrorKind};
use crate::layers::mqtt::QoS;
use crate::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestKind {
    Register,
    Poll,
}

/// Where the registration stands.
#[derive(Debug)]
pub(crate) enum Op {
    /// Not started, or finished.
    Idle,
    /// Send (or re-send) a request when `not_before` is reached and a connection is up.
    Pending { kind: RequestKind, not_before: u64 },
    /// Request sent with this `$rid`; waiting for its response.
    Awaiting { kind: RequestKind, rid: String },
}

/// The registration's progress.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) op: Op,
    /// Set by the first answer that carries one; polls ask about it.
    pub(crate) operation_id: Option<String>,
    next_rid: u64,
}

impl Attempt {
    pub(crate) fn new() -> Attempt {
        Attempt {
            op: Op::Idle,
            operation_id: None,
            next_rid: 1,
        }
    }

    /// A new attempt: register first, from `now`. `$rid`s keep counting, so a late answer to
    /// the last attempt cannot match.
    pub(crate) fn start(&mut self, now: u64) {
        self.operation_id = None;
        self.op = Op::Pending {
            kind: RequestKind::Register,
            not_before: now,
        };
    }

    pub(crate) fn is_running(&self) -> bool {
        !matches!(self.op, Op::Idle)
    }

    /// The request in flight was lost with its connection: send it again from `now`.
    pub(crate) fn resend(&mut self, now: u64) {
        if let Op::Awaiting { kind, .. } = self.op {
            self.op = Op::Pending {
                kind,
                not_before: now,
            };
        }
    }

    /// When the pending request may go out; `poll_not_before` is the poll window's gate.
    pub(crate) fn due(&self, poll_not_before: u64) -> Option<u64> {
        match self.op {
            Op::Pending {
                kind: RequestKind::Poll,
                not_before,
            } => Some(not_before.max(poll_not_before)),
            Op::Pending { not_before, .. } => Some(not_before),
            _ => None,
        }
    }

    fn next_rid(&mut self) -> String {
        let rid = self.next_rid.to_string();
        self.next_rid = self.next_rid.wrapping_add(1);
        rid
    }

    /// The kind of the request `rid` answers, when it is the one in flight.
    fn matches(&self, rid: Option<&str>) -> Option<RequestKind> {
        match &self.op {
            Op::Awaiting { kind, rid: sent } if rid == Some(sent.as_str()) => Some(*kind),
            _ => None,
        }
    }
}

impl Engine {
    /// Sends the pending request if it is due and the session is ready; requests are queued
    /// behind CONNECT/SUBSCRIBE, so the first one goes out in the same flight.
    pub(crate) fn send_due_request(&mut self, now: u64) {
        let Op::Pending { kind, .. } = self.attempt.op else {
            return;
        };
        let gate = self
            .attempt
            .due(self.retry.poll_not_before(&self.settings.timing))
            .unwrap_or(u64::MAX);
        if now < gate {
            return;
        }
        let Link::Up(conn) = &mut self.link else {
            return;
        };
        let rid = self.attempt.next_rid();
        let (topic, body) = match kind {
            RequestKind::Register => {
                let body = protocol::register_body(
                    &self.settings.registration_id,
                    self.settings.payload.as_ref(),
                    self.settings.csr_b64.as_deref(),
                );
                (protocol::register_topic(&rid), body)
            }
            RequestKind::Poll => {
                let Some(op_id) = self.attempt.operation_id.as_deref() else {
                    return self.fail(Error::new(ErrorKind::Internal, "poll without operation id"));
                };
                (protocol::poll_topic(&rid, op_id), Vec::new())
            }
        };
        if let Err(e) = conn.mqtt.publish(&topic, &body, QoS::AtMostOnce) {
            return self.fail(e);
        }
        if kind == RequestKind::Poll {
            self.retry.poll_sent(&self.settings.timing, now);
        }
        self.log(
            Level::Debug,
            format!("publish {} ({} bytes)", protocol::clip(&topic), body.len()),
        );
        if kind == RequestKind::Register {
            self.status(Status::Registering);
        }
        self.attempt.op = Op::Awaiting { kind, rid };
    }

    /// A PUBLISH on the response topic.
    pub(crate) fn on_response(&mut self, now: u64, topic: &str, body: &[u8]) {
        let response = match protocol::parse_response_topic(topic) {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };
        if !matches!(self.attempt.op, Op::Awaiting { .. }) {
            return self.log(
                Level::Debug,
                format!("ignoring unsolicited response on {}", protocol::clip(topic)),
            );
        }
        let Some(kind) = self.attempt.matches(response.rid.as_deref()) else {
            return self.log(
                Level::Debug,
                format!(
                    "ignoring response for another request: {}",
                    protocol::clip(topic)
                ),
            );
        };
        if let Some(conn) = self.link.connection() {
            conn.answered = true;
        }
        self.retry.answered();
        let status = response.status;
        self.outcome.http_status = Some(status);
        if let RetryAfter::Invalid(text) = &response.retry_after {
            let text = text.clone();
            self.log(
                Level::Warn,
                format!("ignoring invalid retry-after {text:?}"),
            );
        }
        let retry_after = retry::retry_after_ms(&self.settings.timing, &response.retry_after);
        self.outcome.retry_after_ms = retry_after;
        self.log(
            Level::Info,
            format!("response {status} ({} bytes)", body.len()),
        );
        match status {
            200 | 202 => self.on_operation_status(now, status, body, retry_after),
            429 | 500..=599 => {
                let delay = self.retry.throttled(&self.settings.timing, retry_after);
                self.outcome.record_envelope(body);
                self.status(Status::Throttled);
                self.log(
                    Level::Warn,
                    format!("service answered {status}; retrying in {delay} ms"),
                );
                self.attempt.op = Op::Pending {
                    kind,
                    not_before: now.saturating_add(delay),
                };
            }
            401 => {
                self.outcome.record_envelope(body);
                self.fail(Error::new(
                    ErrorKind::AuthUnauthorized,
                    self.outcome.detail("service answered 401"),
                ));
            }
            400..=499 => {
                self.outcome.record_envelope(body);
                self.fail(Error::new(
                    ErrorKind::RegistrationRejected,
                    self.outcome.detail(&format!("service answered {status}")),
                ));
            }
            _ => self.fail(Error::new(
                ErrorKind::ProtocolUnexpectedStatus,
                format!("unexpected status {status}"),
            )),
        }
    }

    fn on_operation_status(&mut self, now: u64, status: u16, body: &[u8], retry: Option<u64>) {
        let parsed = match protocol::parse_operation_status(body) {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        self.retry.status_received();
        if !parsed.operation_id.is_empty() {
            self.attempt.operation_id = Some(parsed.operation_id.clone());
            self.outcome.operation_id = Some(parsed.operation_id.clone());
        }
        self.outcome.status = Some(parsed.status.as_str().to_owned());
        if let Some(state) = parsed.registration_state {
            self.outcome.record_state(state);
        }
        match parsed.status {
            RegistrationStatus::Assigned => match self.outcome.record_assignment(self.unix_now) {
                Ok(()) => self.finish(None),
                Err(e) => self.fail(e),
            },
            RegistrationStatus::Assigning => {
                if self.attempt.operation_id.is_none() {
                    return self.fail(Error::new(
                        ErrorKind::ProtocolBadResponse,
                        format!("{status} assigning without operationId"),
                    ));
                }
                let delay = retry::assigning_delay(&self.settings.timing, retry);
                self.status(Status::Assigning);
                self.attempt.op = Op::Pending {
                    kind: RequestKind::Poll,
                    not_before: now.saturating_add(delay),
                };
                self.send_due_request(now);
            }
            RegistrationStatus::Disabled => self.fail(Error::new(
                ErrorKind::RegistrationDisabled,
                self.outcome.detail("enrollment disabled"),
            )),
            RegistrationStatus::Failed | RegistrationStatus::Unassigned => self.fail(Error::new(
                ErrorKind::RegistrationFailed,
                self.outcome
                    .detail(&format!("registration {}", parsed.status.as_str())),
            )),
            RegistrationStatus::Other(s) => self.fail(Error::new(
                ErrorKind::ProtocolBadResponse,
                format!("unknown registration status {s:?}"),
            )),
        }
    }
}
