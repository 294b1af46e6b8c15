//! What the service told the attempt, kept for the getters, and how its answers fill it in.

use crate::dps::protocol::{self, RegistrationState};
use crate::error::Error;
use crate::prelude::*;

/// What the service told us, kept for the getters. Reset at the start of each attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub status: Option<String>,
    pub operation_id: Option<String>,
    pub assigned_hub: Option<String>,
    pub device_id: Option<String>,
    pub substatus: Option<String>,
    pub etag: Option<String>,
    pub created_date_time_utc: Option<String>,
    pub last_updated_date_time_utc: Option<String>,
    pub payload: Option<String>,
    pub issued_certificate_chain: Vec<String>,
    /// `issued_certificate_chain` as PEM, leaf first; set on assignment when the service
    /// issued a certificate.
    pub issued_certificate_chain_pem: Option<String>,
    /// UNIX seconds (the caller's clock) when the assignment arrived; for the stored blob.
    pub assigned_at_unix: Option<u64>,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub tracking_id: Option<String>,
    pub http_status: Option<u16>,
    pub retry_after_ms: Option<u64>,
    /// Final result of the attempt (assigned, or the error that ended it), `None` while
    /// running.
    pub result: Option<Result<(), Error>>,
}

impl Outcome {
    /// Takes the fields of a `registrationState`.
    pub(crate) fn record_state(&mut self, state: RegistrationState) {
        self.assigned_hub = state.assigned_hub;
        self.device_id = state.device_id;
        self.substatus = state.substatus;
        self.etag = state.etag;
        self.created_date_time_utc = state.created_date_time_utc;
        self.last_updated_date_time_utc = state.last_updated_date_time_utc;
        self.payload = state.payload;
        self.issued_certificate_chain = state.issued_certificate_chain;
        self.error_code = state.error_code;
        self.error_message = state.error_message;
    }

    /// Takes the error envelope of a 4xx/5xx answer, when the body is one.
    pub(crate) fn record_envelope(&mut self, body: &[u8]) {
        if let Ok(env) = protocol::parse_error_envelope(body) {
            self.error_code = env.error_code;
            self.tracking_id = env.tracking_id;
            self.error_message = env.message;
        }
    }

    /// Completes an `assigned` answer: it must name the hub and the device, and an issued
    /// chain must decode (it becomes PEM). `unix_now` is when it arrived.
    pub(crate) fn record_assignment(&mut self, unix_now: u64) -> Result<(), Error> {
        if self.assigned_hub.is_none() || self.device_id.is_none() {
            return Err(Error::new(
                crate::error::ErrorKind::ProtocolBadResponse,
                "assigned without assignedHub or deviceId",
            ));
        }
        if !self.issued_certificate_chain.is_empty() {
            let pem = protocol::certificate_chain_pem(&self.issued_certificate_chain)?;
            self.issued_certificate_chain_pem = Some(pem);
        }
        self.assigned_at_unix = Some(unix_now);
        Ok(())
    }

    /// `what`, followed by the service's errorCode and message when it sent them (in the error
    /// envelope or in registrationState).
    pub(crate) fn detail(&self, what: &str) -> String {
        match (&self.error_code, &self.error_message) {
            (Some(code), Some(msg)) => format!("{what}: {code} {msg}"),
            (Some(code), None) => format!("{what}: {code}"),
            (None, Some(msg)) => format!("{what}: {msg}"),
            (None, None) => what.to_owned(),
        }
    }
}
