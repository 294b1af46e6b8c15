//! The retry policy, pure: each rule is a function of the policy's state, the time and what
//! happened, returning a decision. No I/O, no engine.
//!
//! - Reconnects: exponential back-off with jitter per consecutive failed connection; give up
//!   after `max_connection_failures` of them. A connection that answered a request resets the
//!   count.
//! - Throttling (429, 5xx on the register PUT or the status GET): wait the server's
//!   retry-after, or back off with jitter when it sent none; a status answer resets the count.
//! - Assigning (202): wait the server's retry-after, or the floor when it sent none.
//! - Retry-after: seconds from the server, clamped to `retry_after_max_ms`.
//! - Status polls: at most `poll_window_count` in any `poll_window_ms` (service: 5 per 10 s).
//! - One overall deadline per attempt; the timeout says what the attempt was waiting for.

use alloc::collections::VecDeque;

use super::Timing;
use crate::dps::protocol::RetryAfter;
use crate::error::dps_result;

/// What to do after a connection was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reconnect {
    /// Dial again after this many milliseconds.
    After(u64),
    /// Too many consecutive failed connections: the attempt ends with the transport's error.
    GiveUp,
}

/// The retry state of one attempt.
#[derive(Debug)]
pub(crate) struct Retry {
    deadline: u64,
    /// Consecutive connections that failed before answering a request.
    failures: u32,
    /// Whether the last answer was a throttle (429/5xx): a timeout then says so.
    throttled: bool,
    /// Consecutive throttled answers, for their back-off.
    throttle_attempts: u32,
    /// Send times of the last `poll_window_count` polls, oldest first.
    polls: VecDeque<u64>,
    /// xorshift64 state of the jitter; never 0.
    rng: u64,
}

impl Retry {
    /// A policy whose jitter starts from `device` (the registration id), so that devices
    /// differ even before the entropy source is mixed in.
    pub(crate) fn for_device(device: &str) -> Retry {
        let seed = device.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Retry {
            deadline: 0,
            failures: 0,
            throttled: false,
            throttle_attempts: 0,
            polls: VecDeque::new(),
            rng: seed | 1,
        }
    }

    /// A new attempt at `now`: counts cleared, the deadline set, `entropy` mixed into the
    /// jitter (devices that start together, after a power cut, must not retry in step).
    pub(crate) fn start(&mut self, timing: &Timing, now: u64, entropy: u64) {
        self.deadline = now.saturating_add(timing.deadline_ms);
        self.failures = 0;
        self.throttled = false;
        self.throttle_attempts = 0;
        self.polls.clear();
        self.rng = (self.rng ^ entropy) | 1;
    }

    /// When the attempt's deadline passes.
    pub(crate) fn deadline(&self) -> u64 {
        self.deadline
    }

    /// The timeout that ends the attempt at `now`, or `None` while time is left. `assigning`:
    /// the service has accepted the registration (an operation id is known).
    pub(crate) fn expired(&self, now: u64, assigning: bool) -> Option<dps_result> {
        if now < self.deadline {
            None
        } else if self.throttled {
            Some(dps_result::DPS_ERR_TIMEOUT_THROTTLED)
        } else if assigning {
            Some(dps_result::DPS_ERR_TIMEOUT_ASSIGNING)
        } else {
            Some(dps_result::DPS_ERR_TIMEOUT)
        }
    }

    /// The service answered one of our requests: the connection works.
    pub(crate) fn answered(&mut self) {
        self.failures = 0;
    }

    /// The connection was lost; `answered` tells whether it had answered a request.
    pub(crate) fn connection_lost(&mut self, timing: &Timing, answered: bool) -> Reconnect {
        if answered {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures > timing.max_connection_failures {
            return Reconnect::GiveUp;
        }
        Reconnect::After(self.backoff(timing, self.failures))
    }

    /// The service throttled a request (429, 5xx): milliseconds until it is sent again.
    pub(crate) fn throttled(&mut self, timing: &Timing, retry_after: Option<u64>) -> u64 {
        self.throttled = true;
        self.throttle_attempts = self.throttle_attempts.saturating_add(1);
        match retry_after {
            Some(ms) => ms,
            None => self.backoff(timing, self.throttle_attempts),
        }
    }

    /// The service answered with an operation status (200/202): no longer throttled.
    pub(crate) fn status_received(&mut self) {
        self.throttled = false;
        self.throttle_attempts = 0;
    }

    /// Earliest time the next status poll may go out under the poll window.
    pub(crate) fn poll_not_before(&self, timing: &Timing) -> u64 {
        if self.polls.len() < timing.poll_window_count {
            return 0;
        }
        self.polls
            .front()
            .map_or(0, |first| first.saturating_add(timing.poll_window_ms))
    }

    /// A status poll went out at `now`.
    pub(crate) fn poll_sent(&mut self, timing: &Timing, now: u64) {
        self.polls.push_back(now);
        while self.polls.len() > timing.poll_window_count {
            self.polls.pop_front();
        }
    }

    /// The back-off before try `attempt` (1 = first retry), jittered.
    fn backoff(&mut self, timing: &Timing, attempt: u32) -> u64 {
        // xorshift64: jitter needs spread, not secrecy.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        jitter(backoff_base(timing, attempt), self.rng)
    }
}

/// The exponential back-off before try `attempt` (1 = first retry), before jitter: the
/// initial back-off doubling per try, capped at `backoff_max_ms`.
pub(crate) fn backoff_base(timing: &Timing, attempt: u32) -> u64 {
    let doublings = attempt.saturating_sub(1).min(20);
    timing
        .backoff_initial_ms
        .saturating_mul(2u64.saturating_pow(doublings))
        .min(timing.backoff_max_ms)
}

/// Full jitter in the upper half: uniform in [base/2, base] for a uniform `random`.
pub(crate) fn jitter(base: u64, random: u64) -> u64 {
    let half = base / 2;
    // `base - half + 1` >= 1 and cannot overflow: `half` >= `base / 2`.
    let span = base.saturating_sub(half).saturating_add(1);
    half.saturating_add(random.checked_rem(span).unwrap_or(0))
}

/// A usable retry-after in milliseconds, clamped to `retry_after_max_ms`; `None` when the
/// server sent none or something that is not a number of seconds.
pub(crate) fn retry_after_ms(timing: &Timing, raw: &RetryAfter) -> Option<u64> {
    match raw {
        RetryAfter::Absent | RetryAfter::Invalid(_) => None,
        RetryAfter::Seconds(s) => Some(s.saturating_mul(1000).min(timing.retry_after_max_ms)),
    }
}

/// How long to wait before polling a registration that is being assigned: the server's
/// retry-after, or the floor when it sent none.
pub(crate) fn assigning_delay(timing: &Timing, retry_after: Option<u64>) -> u64 {
    retry_after.unwrap_or(timing.retry_after_floor_ms)
}

