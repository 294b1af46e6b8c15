//! What the library needs from the platform below the transport: memory and, without `std`, a
//! place for panics to go. Both are process-wide (Rust has one global allocator and one panic
//! handler per program), so these hooks are too; everything else is per client.
//!
//! Memory: every allocation the library makes goes through [`HookedAllocator`], the program's
//! global allocator. By default it is `malloc`/`free` (the system allocator on hosted builds);
//! `dps_set_allocator` points it at the firmware's own, e.g. a fixed arena. The allocator also
//! keeps the library's heap figures (`dps_heap_usage`).
//!
//! Running out: Rust's collections cannot report a failed allocation, so a NULL from the
//! firmware's allocator would end in `handle_alloc_error` (an abort, or a panic without std).
//! Instead the allocator keeps a reserve, taken from the firmware's allocator when it is
//! installed: when the allocator says no, the request is served from the reserve, the refusal
//! is counted (`crate::platform::memory`), and the driving call in progress ends its attempt with
//! `DPS_ERR_OUT_OF_MEMORY`, which frees what the attempt held. Only when the reserve cannot
//! cover a request either does the allocation fail for real.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use linked_list_allocator::Heap;

use super::{guard, guard_value};
use crate::ffi::result::dps_result;
use crate::platform::memory;

/// Allocates `size` bytes aligned to `align` (a power of two); returns NULL when out of memory.
pub type dps_alloc_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, size: usize, align: usize) -> *mut c_void>;

/// Frees a block from `dps_alloc_fn`, with the size and alignment it was allocated with.
pub type dps_free_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, ptr: *mut c_void, size: usize, align: usize)>;

/// The firmware's allocator, for `dps_set_allocator`. Plain data: the library copies it.
///
/// Both functions are called from whichever thread uses the library, possibly at the same
/// time from two threads when two clients run on two threads: make them thread-safe, or use
/// the library from one thread.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct dps_allocator {
    /// Passed to `alloc` and `free`; never dereferenced by the library.
    pub user: *mut c_void,
    /// Required.
    pub alloc: dps_alloc_fn,
    /// Required.
    pub free: dps_free_fn,
    /// Bytes taken from `alloc` at once and kept aside, so that a call during which `alloc`
    /// returns NULL can finish its step and end cleanly with `DPS_ERR_OUT_OF_MEMORY` instead
    /// of stopping the program: requests `alloc` refuses are served from the reserve until the
    /// step ends and the attempt frees what it held. Size it to what the library may hold
    /// beyond your heap during one step. Measured by sweeping arena sizes: 2048 on a 32-bit
    /// MCU without TLS (the Cortex-M4 image under QEMU), 4096 on a 64-bit host without TLS,
    /// 20480 with the library's TLS (c-tests/heap_arena_test.py). 0 keeps no reserve: a NULL
    /// from `alloc` is then fatal (abort, or the panic hook without std).
    pub reserve: usize,
}

/// Called by the panic handler of a build without `std`, with the panic message (not
/// NUL-terminated; valid only during the call). It must not return: reset the device, or log
/// and halt. If it does return, the library halts in a loop.
pub type dps_panic_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, message: *const c_char, len: usize)>;

/// Installs the allocator every allocation of the library goes through, process-wide. Call it
/// before any other `dps_` function, or at a moment when the library holds no memory (every
/// client and config freed).
///
/// @param allocator copied; NULL goes back to the default (`malloc`/`free`).
/// @retval DPS_ERR_INVALID_STATE when the library holds memory from the current allocator
///         (it would be freed into the wrong one).
/// @retval DPS_ERR_INVALID_NULL_POINTER when `alloc` or `free` is NULL.
/// @retval DPS_ERR_OUT_OF_MEMORY when `alloc` could not give the reserve (the allocator
///         installed before stays, without a reserve).
/// Not thread-safe: no other `dps_` call may run meanwhile.
///
/// The hooks are called from the thread calling into the library, with one exception on
/// hosted builds: the built-in transport resolves a host name on a helper thread, and one
/// abandoned at the deadline (a name server that never answered) frees its few bytes from
/// that thread whenever the system resolver returns. Give an IP address, or hooks that are
/// safe to call from two threads, when that can happen.
#[no_mangle]
pub extern "C" fn dps_set_allocator(allocator: *const dps_allocator) -> dps_result {
    guard(|| {
        // SAFETY: a non-NULL `allocator` points to a readable table per the C contract.
        let hooks = unsafe { allocator.as_ref() }.copied();
        let hooks = match hooks {
            None => None,
            Some(h) => match (h.alloc, h.free) {
                (Some(alloc), Some(free)) => Some((
                    Hooks {
                        user: h.user,
                        alloc,
                        free,
                    },
                    h.reserve,
                )),
                _ => return dps_result::DPS_ERR_INVALID_NULL_POINTER,
            },
        };
        if memory::usage().0 != 0 {
            return dps_result::DPS_ERR_INVALID_STATE;
        }
        STATE.install(hooks)
    })
}

/// Reports the library's heap use: the bytes it holds now and the most it held at once since
/// the program started or since `dps_heap_reset_peak`. Either pointer may be NULL. Counts
/// every allocation of the library (TLS included), not the allocator's own overhead or the
/// reserve of `dps_allocator`. Thread-safe.
#[no_mangle]
pub extern "C" fn dps_heap_usage(current: *mut usize, peak: *mut usize) -> dps_result {
    guard(|| {
        let (now, most) = memory::usage();
        // SAFETY: each non-NULL pointer is writable per the C contract.
        unsafe {
            if let Some(out) = current.as_mut() {
                *out = now;
            }
            if let Some(out) = peak.as_mut() {
                *out = most;
            }
        }
        dps_result::DPS_OK
    })
}

/// Starts a new peak measurement for `dps_heap_usage` from what the library holds now, e.g.
/// before one registration to measure that registration alone. Thread-safe.
#[no_mangle]
pub extern "C" fn dps_heap_reset_peak() {
    guard_value((), memory::reset_peak);
}

/// Installs the function the panic handler calls in a build without `std` (firmware); NULL
/// removes it. Without a hook, a panic halts in a loop (a watchdog then resets the device).
/// Hosted builds catch panics at the API boundary and return `DPS_ERR_PANIC` instead, and do
/// not call the hook. The library's own code has no panic paths; this is for the ones its
/// dependencies may still have. Not thread-safe with a panic in progress.
#[no_mangle]
pub extern "C" fn dps_set_panic_hook(hook: dps_panic_fn, user: *mut c_void) -> dps_result {
    guard(|| {
        PANIC_USER.store(user, Ordering::Release);
        PANIC_HOOK.store(hook.map_or(0, |f| f as usize), Ordering::Release);
        dps_result::DPS_OK
    })
}

static PANIC_HOOK: AtomicUsize = AtomicUsize::new(0);
static PANIC_USER: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

#[derive(Clone, Copy)]
struct Hooks {
    user: *mut c_void,
    alloc: unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void,
    free: unsafe extern "C" fn(*mut c_void, *mut c_void, usize, usize),
}

/// Alignment of the reserve block.
const RESERVE_ALIGN: usize = 16;

/// The installed hooks and the reserve. The hooks are atomics so that reading them on every
/// allocation is not a data race; `dps_set_allocator` promises no concurrent calls, so they
/// are never seen half-written. The reserve is a first-fit heap (linked_list_allocator) over
/// one block from the hooks' `alloc`: blocks freed while memory is short are reused, so a
/// `Vec` growing inside it costs its live size, not the sum of every size it passed through.
struct State {
    user: AtomicPtr<c_void>,
    /// The hook functions as addresses; 0 = the default allocator.
    alloc: AtomicUsize,
    free: AtomicUsize,
    /// The reserve block's address and size (0 = none), for `in_reserve` without the lock.
    reserve: AtomicPtr<u8>,
    reserve_len: AtomicUsize,
    reserve_lock: AtomicBool,
    reserve_heap: UnsafeCell<Heap>,
}

// SAFETY: `reserve_heap` is only touched with `reserve_lock` held (see `with_reserve`); every
// other field is an atomic.
unsafe impl Sync for State {}

static STATE: State = State {
    user: AtomicPtr::new(ptr::null_mut()),
    alloc: AtomicUsize::new(0),
    free: AtomicUsize::new(0),
    reserve: AtomicPtr::new(ptr::null_mut()),
    reserve_len: AtomicUsize::new(0),
    reserve_lock: AtomicBool::new(false),
    reserve_heap: UnsafeCell::new(Heap::empty()),
};

/// Whether the firmware's allocator hooks are installed: they may not be thread-safe, so the
/// library allocates from one thread at a time.
#[cfg(feature = "std")]
pub(crate) fn allocator_hooks_installed() -> bool {
    STATE.alloc.load(Ordering::Acquire) != 0
}

impl State {
    fn hooks(&self) -> Option<Hooks> {
        let alloc = self.alloc.load(Ordering::Acquire);
        let free = self.free.load(Ordering::Acquire);
        if alloc == 0 || free == 0 {
            return None;
        }
        // SAFETY: non-zero values were stored by `install` from functions of exactly these
        // types, and function pointers round-trip through usize on every supported target.
        let (alloc, free) = unsafe {
            (
                core::mem::transmute::<
                    usize,
                    unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void,
                >(alloc),
                core::mem::transmute::<
                    usize,
                    unsafe extern "C" fn(*mut c_void, *mut c_void, usize, usize),
                >(free),
            )
        };
        Some(Hooks {
            user: self.user.load(Ordering::Acquire),
            alloc,
            free,
        })
    }

    /// Installs `hooks` with a reserve of that many bytes taken from them (None: the default
    /// allocator, no reserve).
    fn install(&self, hooks: Option<(Hooks, usize)>) -> dps_result {
        self.release_reserve();
        let mut reserve = ptr::null_mut();
        if let Some((h, len)) = hooks.filter(|&(_, len)| len > 0) {
            // SAFETY: the firmware's allocator, called as its contract says.
            reserve = unsafe { (h.alloc)(h.user, len, RESERVE_ALIGN) }.cast::<u8>();
            if reserve.is_null() {
                return dps_result::DPS_ERR_OUT_OF_MEMORY;
            }
        }
        self.alloc.store(0, Ordering::Release);
        self.free.store(0, Ordering::Release);
        if let Some((h, len)) = hooks {
            let len = if reserve.is_null() { 0 } else { len };
            self.with_reserve(|heap| {
                if len > 0 {
                    // SAFETY: `reserve` is a fresh block of `len` bytes, owned by the heap
                    // until `release_reserve`.
                    unsafe { heap.init(reserve, len) };
                }
            });
            self.user.store(h.user, Ordering::Release);
            self.reserve.store(reserve, Ordering::Release);
            self.reserve_len.store(len, Ordering::Release);
            self.free.store(h.free as usize, Ordering::Release);
            self.alloc.store(h.alloc as usize, Ordering::Release);
        }
        dps_result::DPS_OK
    }

    /// Gives the reserve back to the allocator it came from. Only called with no library
    /// memory live (checked by `dps_set_allocator`), so no block of the reserve is in use.
    fn release_reserve(&self) {
        let block = self.reserve.swap(ptr::null_mut(), Ordering::AcqRel);
        let len = self.reserve_len.swap(0, Ordering::AcqRel);
        self.with_reserve(|heap| *heap = Heap::empty());
        if block.is_null() {
            return;
        }
        if let Some(h) = self.hooks() {
            // SAFETY: `block` came from this allocator with this size and alignment.
            unsafe { (h.free)(h.user, block.cast(), len, RESERVE_ALIGN) };
        }
    }

    fn in_reserve(&self, p: *mut u8) -> bool {
        let start = self.reserve.load(Ordering::Acquire) as usize;
        let len = self.reserve_len.load(Ordering::Acquire);
        let p = p as usize;
        start != 0 && p.checked_sub(start).is_some_and(|offset| offset < len)
    }

    /// Runs `f` on the reserve heap with the lock held. A spin lock: it is only contended
    /// when two threads run out of memory at once, and it must work without an OS.
    fn with_reserve<R>(&self, f: impl FnOnce(&mut Heap) -> R) -> R {
        while self
            .reserve_lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the lock is held, so this is the only reference to the heap.
        let result = f(unsafe { &mut *self.reserve_heap.get() });
        self.reserve_lock.store(false, Ordering::Release);
        result
    }

    /// Serves `layout` from the reserve, or NULL when it does not fit.
    fn take_from_reserve(&self, layout: Layout) -> *mut u8 {
        self.with_reserve(|heap| {
            heap.allocate_first_fit(layout)
                .map_or(ptr::null_mut(), NonNull::as_ptr)
        })
    }

    fn free_reserve_block(&self, block: *mut u8, layout: Layout) {
        if let Some(block) = NonNull::new(block) {
            // SAFETY: `block` came from `take_from_reserve` with this layout.
            self.with_reserve(|heap| unsafe { heap.deallocate(block, layout) });
        }
    }
}

/// The library's global allocator: the firmware's hooks when installed, else the default.
pub struct HookedAllocator;

#[global_allocator]
static ALLOCATOR: HookedAllocator = HookedAllocator;

// SAFETY: blocks come from the firmware's allocator (asked for exactly `layout`), from the
// default allocator, or from the reserve heap (which honours `layout`), and each is freed back
// to where it came from, decided by its address.
unsafe impl GlobalAlloc for HookedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let block = match STATE.hooks() {
            None => {
                // SAFETY: forwarded with the caller's layout.
                unsafe { default_alloc(layout) }
            }
            Some(h) => {
                // SAFETY: the firmware's allocator, called as its contract says.
                let block =
                    unsafe { (h.alloc)(h.user, layout.size(), layout.align()) }.cast::<u8>();
                if block.is_null() {
                    memory::on_refused();
                    STATE.take_from_reserve(layout)
                } else {
                    block
                }
            }
        };
        if !block.is_null() {
            memory::on_alloc(layout.size());
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        memory::on_free(layout.size());
        if STATE.in_reserve(block) {
            STATE.free_reserve_block(block, layout);
            return;
        }
        match STATE.hooks() {
            // SAFETY: `block` came from the default allocator with this layout.
            None => unsafe { default_dealloc(block, layout) },
            // SAFETY: `block` came from the firmware's allocator with this size and alignment.
            Some(h) => unsafe { (h.free)(h.user, block.cast(), layout.size(), layout.align()) },
        }
    }
}

#[cfg(feature = "std")]
unsafe fn default_alloc(layout: Layout) -> *mut u8 {
    // SAFETY: forwarded with the caller's layout.
    unsafe { std::alloc::System.alloc(layout) }
}

#[cfg(feature = "std")]
unsafe fn default_dealloc(block: *mut u8, layout: Layout) {
    // SAFETY: `block` came from `System.alloc` with this layout.
    unsafe { std::alloc::System.dealloc(block, layout) }
}

#[cfg(not(feature = "std"))]
extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(block: *mut c_void);
}

/// What `malloc` guarantees on every C library the firmware build targets (newlib: 8).
#[cfg(not(feature = "std"))]
const MALLOC_ALIGN: usize = 8;

/// `malloc` for alignments it guarantees; larger ones over-allocate and keep the address
/// `malloc` returned just below the block.
#[cfg(not(feature = "std"))]
unsafe fn default_alloc(layout: Layout) -> *mut u8 {
    if layout.align() <= MALLOC_ALIGN {
        // SAFETY: C's malloc.
        return unsafe { malloc(layout.size()) }.cast();
    }
    let Some(total) = layout.size().checked_add(layout.align()) else {
        return ptr::null_mut();
    };
    // SAFETY: C's malloc.
    let raw = unsafe { malloc(total) }.cast::<u8>();
    if raw.is_null() {
        return raw;
    }
    // Room for the pointer below the block: align ≥ 16 > size_of::<*mut u8>(). An alignment
    // is a power of two, and `raw`'s misalignment is below it: neither saturates.
    let misalignment = raw as usize & layout.align().saturating_sub(1);
    let offset = layout.align().saturating_sub(misalignment);
    // SAFETY: `offset` is in 1..=align, so block and the word below it are inside `raw`.
    unsafe {
        let block = raw.add(offset);
        block.cast::<*mut u8>().sub(1).write_unaligned(raw);
        block
    }
}

#[cfg(not(feature = "std"))]
unsafe fn default_dealloc(block: *mut u8, layout: Layout) {
    if layout.align() <= MALLOC_ALIGN {
        // SAFETY: `block` came from malloc.
        return unsafe { free(block.cast()) };
    }
    // SAFETY: `default_alloc` stored malloc's address just below the block.
    unsafe { free(block.cast::<*mut u8>().sub(1).read_unaligned().cast()) }
}

/// The panic handler of firmware builds: the message goes to the firmware's hook, formatted
/// into a stack buffer (the heap may be what failed), then the core halts.
#[cfg(all(not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;

    struct Truncating {
        buf: [u8; 160],
        len: usize,
    }
    impl Write for Truncating {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for &b in s.as_bytes() {
                if let Some(slot) = self.buf.get_mut(self.len) {
                    *slot = b;
                    // `len` indexed a slot of the 160-byte buffer: no saturation.
                    self.len = self.len.saturating_add(1);
                }
            }
            Ok(())
        }
    }
    let mut text = Truncating {
        buf: [0; 160],
        len: 0,
    };
    let _ = write!(text, "{}", info.message());
    if let Some(location) = info.location() {
        let _ = write!(text, " at {}:{}", location.file(), location.line());
    }
    let hook = PANIC_HOOK.load(Ordering::Acquire);
    if hook != 0 {
        // SAFETY: a non-zero value was stored by `dps_set_panic_hook` from a function of this
        // type; the message is valid for the call.
        unsafe {
            let hook = core::mem::transmute::<
                usize,
                unsafe extern "C" fn(*mut c_void, *const c_char, usize),
            >(hook);
            hook(
                PANIC_USER.load(Ordering::Acquire),
                text.buf.as_ptr().cast(),
                text.len,
            );
        }
    }
    loop {
        core::hint::spin_loop();
    }
}
