//! The retry policy, pure: each rule is a function of the policy's state, the time and what
//! happened, returning a decision. No I/O, no engine.
//!
//! - Reconnects: exponential back-off with jitter per consecutive failed connection, until
//!   the deadline (no other cap). A connection that answered a request resets the count.
//! - Throttling (429, 5xx on the register PUT or the status GET): wait the server's
//!   retry-after, or back off with jitter when it sent none; a status answer resets the count.
//! - Assigning (202): wait the server's retry-after, or the floor when it sent none.
//! - Retry-after: seconds from the server, clamped to `retry_after_max_ms`.
//! - Status polls: at most `poll_window_count` in any `poll_window_ms` (service: 5 per 10 s).
//! - One overall deadline per attempt; the timeout says what the attempt was waiting for.

use alloc::collections::VecDeque;

use super::Timing;
use crate::dps::protocol::RetryAfter;
use crate::error::ErrorKind;

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
    pub(crate) fn expired(&self, now: u64, assigning: bool) -> Option<ErrorKind> {
        if now < self.deadline {
            None
        } else if self.throttled {
            Some(ErrorKind::TimeoutThrottled)
        } else if assigning {
            Some(ErrorKind::TimeoutAssigning)
        } else {
            Some(ErrorKind::Timeout)
        }
    }

    /// The service answered one of our requests: the connection works.
    pub(crate) fn answered(&mut self) {
        self.failures = 0;
    }

    /// The connection was lost; `answered` tells whether it had answered a request. Returns
    /// the milliseconds to wait before dialling again; the deadline ends the retries.
    pub(crate) fn connection_lost(&mut self, timing: &Timing, answered: bool) -> u64 {
        if answered {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.backoff(timing, self.failures)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    fn timing() -> Timing {
        Timing::default()
    }

    fn started(timing: &Timing, now: u64) -> Retry {
        let mut r = Retry::for_device("dev-1");
        r.start(timing, now, 0x5a5a_5a5a_5a5a_5a5a);
        r
    }

    #[test]
    fn backoff_doubles_from_the_initial_value_up_to_the_cap() {
        let t = timing();
        let bases: Vec<u64> = (1..=7).map(|a| backoff_base(&t, a)).collect();
        assert_eq!(bases, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(backoff_base(&t, 0), 1_000, "try 0 counts as the first");
    }

    #[test]
    fn backoff_cannot_overflow() {
        let t = Timing {
            backoff_initial_ms: u64::MAX / 3,
            backoff_max_ms: u64::MAX,
            ..timing()
        };
        assert_eq!(backoff_base(&t, u32::MAX), u64::MAX);
        assert_eq!(backoff_base(&t, 1), u64::MAX / 3);
        assert!(jitter(u64::MAX, u64::MAX) >= u64::MAX / 2);
    }

    #[test]
    fn jitter_stays_in_the_upper_half_and_reaches_both_ends() {
        for random in 0..=2_000 {
            let d = jitter(1_000, random);
            assert!((500..=1_000).contains(&d), "{random}: {d}");
        }
        assert_eq!(jitter(1_000, 0), 500);
        assert_eq!(jitter(1_000, 500), 1_000);
        assert_eq!(jitter(0, 12345), 0);
        assert!([0, 1].contains(&jitter(1, 7)));
    }

    #[test]
    fn jittered_backoffs_spread_and_depend_on_the_entropy() {
        let t = timing();
        let draws = |entropy: u64| -> Vec<u64> {
            let mut r = Retry::for_device("dev-1");
            r.start(&t, 0, entropy);
            (0..16).map(|_| r.backoff(&t, 1)).collect()
        };
        let a = draws(1);
        assert!(a.iter().all(|d| (500..=1_000).contains(d)), "{a:?}");
        assert!(a.iter().any(|d| *d != a[0]), "jitter varies: {a:?}");
        assert_ne!(a, draws(2), "another entropy, other delays");
    }

    #[test]
    fn retry_after_is_clamped_and_unusable_values_are_none() {
        let t = timing();
        assert_eq!(retry_after_ms(&t, &RetryAfter::Absent), None);
        assert_eq!(retry_after_ms(&t, &RetryAfter::Invalid("-5".into())), None);
        assert_eq!(retry_after_ms(&t, &RetryAfter::Seconds(0)), Some(0));
        assert_eq!(retry_after_ms(&t, &RetryAfter::Seconds(3)), Some(3_000));
        assert_eq!(retry_after_ms(&t, &RetryAfter::Seconds(120)), Some(120_000));
        assert_eq!(retry_after_ms(&t, &RetryAfter::Seconds(121)), Some(120_000));
        assert_eq!(
            retry_after_ms(&t, &RetryAfter::Seconds(u64::MAX)),
            Some(t.retry_after_max_ms)
        );
    }

    #[test]
    fn assigning_waits_the_retry_after_or_the_floor() {
        let t = timing();
        assert_eq!(assigning_delay(&t, None), t.retry_after_floor_ms);
        assert_eq!(
            assigning_delay(&t, Some(0)),
            0,
            "retry-after 0 polls at once"
        );
        assert_eq!(assigning_delay(&t, Some(7_000)), 7_000);
    }

    #[test]
    fn polls_are_limited_to_the_window() {
        let t = timing();
        let mut r = started(&t, 0);
        for i in 0..5 {
            assert_eq!(r.poll_not_before(&t), 0, "poll {i} is free");
            r.poll_sent(&t, 1_000);
        }
        assert_eq!(
            r.poll_not_before(&t),
            11_000,
            "the sixth waits for the first to age"
        );
        r.poll_sent(&t, 11_000);
        assert_eq!(
            r.poll_not_before(&t),
            11_000,
            "window now starts at the second poll"
        );
        for _ in 0..4 {
            r.poll_sent(&t, 11_000);
        }
        assert_eq!(r.poll_not_before(&t), 21_000);
        r.start(&t, 30_000, 0);
        assert_eq!(
            r.poll_not_before(&t),
            0,
            "a new attempt starts a new window"
        );
    }

    #[test]
    fn a_zero_poll_window_count_is_no_limit() {
        let t = Timing {
            poll_window_count: 0,
            ..timing()
        };
        let mut r = started(&t, 0);
        for now in 0..10 {
            r.poll_sent(&t, now);
            assert_eq!(r.poll_not_before(&t), 0);
        }
    }

    #[test]
    fn reconnects_back_off_without_giving_up() {
        let t = timing();
        let mut r = started(&t, 0);
        for failure in 1..=40 {
            let d = r.connection_lost(&t, false);
            let base = backoff_base(&t, failure);
            assert!((base / 2..=base).contains(&d), "{failure}: {d}");
        }
    }

    #[test]
    fn an_answer_resets_the_back_off() {
        let t = timing();
        let first = 500..=1_000;
        let third = 2_000..=4_000;
        let mut r = started(&t, 0);
        for _ in 0..2 {
            r.connection_lost(&t, false);
        }
        assert!(third.contains(&r.connection_lost(&t, false)));
        r.answered();
        assert!(
            first.contains(&r.connection_lost(&t, false)),
            "after an answer"
        );
        r.connection_lost(&t, false);
        assert!(
            first.contains(&r.connection_lost(&t, true)),
            "a connection that answered does not count against the next"
        );
        r.connection_lost(&t, false);
        r.start(&t, 0, 0);
        assert!(
            first.contains(&r.connection_lost(&t, false)),
            "a new attempt"
        );
    }

    #[test]
    fn throttling_honours_retry_after_else_backs_off() {
        let t = timing();
        let mut r = started(&t, 0);
        assert_eq!(r.throttled(&t, Some(2_000)), 2_000);
        let d = r.throttled(&t, None);
        assert!((1_000..=2_000).contains(&d), "second throttle: {d}");
        let d = r.throttled(&t, None);
        assert!((2_000..=4_000).contains(&d), "third throttle: {d}");
        r.status_received();
        let d = r.throttled(&t, None);
        assert!(
            (500..=1_000).contains(&d),
            "a status answer resets the count: {d}"
        );
    }

    #[test]
    fn the_deadline_names_what_the_attempt_waited_for() {
        let t = Timing {
            deadline_ms: 5_000,
            ..timing()
        };
        let mut r = started(&t, 1_000);
        assert_eq!(r.deadline(), 6_000);
        assert_eq!(r.expired(5_999, true), None);
        assert_eq!(r.expired(6_000, false), Some(ErrorKind::Timeout));
        assert_eq!(r.expired(6_000, true), Some(ErrorKind::TimeoutAssigning));
        r.throttled(&t, Some(1));
        assert_eq!(r.expired(6_000, true), Some(ErrorKind::TimeoutThrottled));
        r.status_received();
        assert_eq!(r.expired(u64::MAX, false), Some(ErrorKind::Timeout));
        let late = Timing {
            deadline_ms: u64::MAX,
            ..timing()
        };
        r.start(&late, 1, 0);
        assert_eq!(r.deadline(), u64::MAX, "saturates");
    }
}
