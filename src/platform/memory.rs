//! The library's own heap accounting, kept by the global allocator in `ffi::platform`: live
//! bytes, their peak, and how often the firmware's allocator said no. Safe code (atomics), so
//! the client can end an attempt that ran out of memory without touching the FFI layer.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static OOM_EVENTS: AtomicU32 = AtomicU32::new(0);

/// Records an allocation of `size` bytes.
pub(crate) fn on_alloc(size: usize) {
    let now = CURRENT.fetch_add(size, Relaxed).wrapping_add(size);
    PEAK.fetch_max(now, Relaxed);
}

/// Records that an allocation of `size` bytes was freed.
pub(crate) fn on_free(size: usize) {
    CURRENT.fetch_sub(size, Relaxed);
}

/// Records that the firmware's allocator returned NULL.
pub(crate) fn on_refused() {
    OOM_EVENTS.fetch_add(1, Relaxed);
}

/// Bytes the library holds now, and the most it held at once since start (or since
/// [`reset_peak`]).
pub fn usage() -> (usize, usize) {
    (CURRENT.load(Relaxed), PEAK.load(Relaxed))
}

/// Starts a new peak measurement from what is held now.
pub fn reset_peak() {
    PEAK.store(CURRENT.load(Relaxed), Relaxed);
}

/// A counter that changes whenever the firmware's allocator refuses a request: compare two
/// readings to learn whether a step ran out of memory.
pub fn oom_events() -> u32 {
    OOM_EVENTS.load(Relaxed)
}
