//! What the client needs from its environment: a byte-stream transport and a clock. The C ABI
//! implements both over the firmware's hooks; `hosted` over the operating system's.

use crate::error::Error;
use crate::prelude::*;

/// Result of one transport read or write.
#[derive(Debug, PartialEq, Eq)]
pub enum Io {
    /// This many bytes were transferred (never 0 for a read; 0 is `Closed`).
    Done(usize),
    /// Nothing can be transferred now; try again later.
    WouldBlock,
    /// The peer closed the connection.
    Closed,
    /// The transport failed; the text is for logs.
    Failed(String),
    /// The transport failed in a way no reconnect cures, with this error: its own TLS (TLS
    /// offload) refused the server. Ends the attempt, as a TLS failure inside the library does.
    Fatal(Error),
}

/// A byte-stream transport. Non-blocking by contract: `send`/`recv` return `WouldBlock`
/// rather than wait; `connect` may return before the connection is up (then `send`/`recv`
/// report `WouldBlock` until it is).
pub trait Transport {
    /// Called before each `connect` with the milliseconds left before the attempt's deadline:
    /// a transport whose `connect` blocks (name resolution, a TCP handshake to a silent host)
    /// must give up by then, or the attempt overruns its deadline.
    fn set_connect_budget_ms(&mut self, _budget_ms: u64) {}
    fn connect(&mut self, host: &str, port: u16) -> core::result::Result<(), String>;
    fn send(&mut self, data: &[u8]) -> Io;
    fn recv(&mut self, buf: &mut [u8]) -> Io;
    fn close(&mut self);
    /// Blocks until the connection is probably readable (or writable, when `want_write`) or
    /// `timeout_ms` has passed. Used only by blocking registration.
    fn wait(&mut self, timeout_ms: u64, want_write: bool);
    /// The operating system's socket the connection runs on (a file descriptor), for a
    /// caller that waits for readiness itself; None when there is none (not connected, or a
    /// transport that is not a socket).
    fn socket(&self) -> Option<i32> {
        None
    }
    /// While a connect that `connect` started is still under way (a non-blocking connect):
    /// the cause to report if the attempt's deadline passes first, or "" when that cause is
    /// just that the server has not answered. None once the connection is up or has failed,
    /// and for a transport that does not say. While it is Some, the client asks to be called
    /// again soon: the connect may progress (an address resolved) with no socket event.
    fn pending_connect(&self) -> Option<&str> {
        None
    }
}

/// Monotonic milliseconds for timers, wall-clock seconds for SAS expiry and certificates.
pub trait Time {
    fn now_ms(&mut self) -> u64;
    fn unix_seconds(&mut self) -> u64;
}

// A client may own its transport and clock (boxed, as the C ABI's are) or borrow them (a test
// that inspects its transport afterwards).

/// Forwards `Transport` and `Time` through a pointer type to what it points at.
macro_rules! forward_through {
    ($pointer:ty) => {
        impl<T: Transport + ?Sized> Transport for $pointer {
            fn set_connect_budget_ms(&mut self, budget_ms: u64) {
                (**self).set_connect_budget_ms(budget_ms);
            }
            fn connect(&mut self, host: &str, port: u16) -> core::result::Result<(), String> {
                (**self).connect(host, port)
            }
            fn send(&mut self, data: &[u8]) -> Io {
                (**self).send(data)
            }
            fn recv(&mut self, buf: &mut [u8]) -> Io {
                (**self).recv(buf)
            }
            fn close(&mut self) {
                (**self).close();
            }
            fn wait(&mut self, timeout_ms: u64, want_write: bool) {
                (**self).wait(timeout_ms, want_write);
            }
            fn socket(&self) -> Option<i32> {
                (**self).socket()
            }
            fn pending_connect(&self) -> Option<&str> {
                (**self).pending_connect()
            }
        }

        impl<T: Time + ?Sized> Time for $pointer {
            fn now_ms(&mut self) -> u64 {
                (**self).now_ms()
            }
            fn unix_seconds(&mut self) -> u64 {
                (**self).unix_seconds()
            }
        }
    };
}

forward_through!(&mut T);
forward_through!(Box<T>);
