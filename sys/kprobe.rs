// SPDX-License-Identifier: GPL-2.0

//! Kernel probes by symbol name: safe wrappers over `register_kprobe` and `register_kretprobe`.
//!
//! A probe that cannot be registered does not fail construction: it keeps the error so that the module
//! can load with the probes that work and show which failed and why.
//!
//! C header: [`include/linux/kprobes.h`](srctree/include/linux/kprobes.h)

use super::bindings;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;
use kernel::c_str;
use kernel::ffi::c_int;
#[cfg(not(rrp_pin_init_crate))]
use kernel::init::pin_init_from_closure;
use kernel::prelude::*;
use kernel::types::Opaque;
#[cfg(rrp_pin_init_crate)]
use pin_init::pin_init_from_closure;

/// A probed kernel function (the functions this module probes are in [`super::probed`]).
///
/// # Safety
///
/// Each of `SYMBOLS` has the prototype that the accessors of `Regs<Self>` and `RetRegs<Self>` assume.
pub(crate) unsafe trait Function: Send + Sync + 'static {
    /// The names to try, in order.
    const SYMBOLS: &'static [&'static CStr];
}

/// The registers of probed function `F` at its entry (`pre_handler`, a kretprobe's `entry_handler`).
///
/// [`super::probed`] reads `F`'s arguments from them with the types of `F`'s prototype.
pub(crate) struct Regs<'a, F: Function> {
    ptr: *mut bindings::pt_regs,
    _lifetime: PhantomData<(&'a bindings::pt_regs, F)>,
}

impl<F: Function> Regs<'_, F> {
    /// Integer or pointer argument `n` (from 0, at most 5), as a word.
    ///
    /// On x86-64, read from the argument registers saved in `pt_regs` (what
    /// `regs_get_kernel_argument()` does) without a call: this runs at every hit.
    #[inline]
    pub(super) fn arg(&self, n: u32) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `self.ptr` is the `pt_regs` the kprobe core passed to the running handler,
            // valid for the whole handler.
            let regs = unsafe { &*self.ptr };
            match n {
                0 => regs.di,
                1 => regs.si,
                2 => regs.dx,
                3 => regs.cx,
                4 => regs.r8,
                _ => regs.r9,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: `self.ptr` is the `pt_regs` the kprobe core passed to the running handler.
        unsafe {
            bindings::rrp_regs_arg(self.ptr, n) as usize
        }
    }

    /// The instruction pointer: in the probed function, just past the probe point.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn ip(&self) -> usize {
        // SAFETY: As in `arg`; `ip` is a plain word of the saved registers.
        unsafe { (*self.ptr).ip }
    }

    /// The C `pt_regs`, for wrappers that pass them on (the unwinder). Valid while `self` is.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn as_ptr(&self) -> *mut bindings::pt_regs {
        self.ptr
    }
}

/// The registers of probed function `F` at its return (a kretprobe's `handler`).
pub(crate) struct RetRegs<'a, F: Function> {
    ptr: *mut bindings::pt_regs,
    _lifetime: PhantomData<(&'a bindings::pt_regs, F)>,
}

impl<F: Function> RetRegs<'_, F> {
    /// The return value, as a word (on x86-64 `ax`, what `regs_return_value()` reads, without a call).
    #[inline]
    pub(super) fn return_value(&self) -> usize {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `self.ptr` is the `pt_regs` the kprobe core passed to the running handler.
        unsafe {
            (*self.ptr).ax
        }
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: `self.ptr` is the `pt_regs` the kprobe core passed to the running handler.
        unsafe {
            bindings::rrp_regs_return_value(self.ptr) as usize
        }
    }
}

/// What a probe reports about itself, whatever its kind.
pub(crate) trait Probe: Sync {
    /// The mechanism: `kprobe`, `kretprobe` or `tracepoint`.
    fn via(&self) -> &'static str;
    /// The symbol (or tracepoint) registered, or the last one tried if none could be.
    fn symbol(&self) -> &'static CStr;
    /// `Ok` when registered, else the error registration gave.
    fn status(&self) -> Result;
    /// How many hits the kprobe core skipped (`nmissed`: the probe fired while another ran).
    fn missed(&self) -> u64;
}

/// Handles hits of a [`Kprobe`]. Runs in any context, with preemption off: it must not sleep, allocate,
/// print or panic.
pub(crate) trait Handler: Sync {
    /// The probed function.
    type Function: Function;
    /// Called at each hit, before the probed instruction.
    fn hit(&self, regs: &Regs<'_, Self::Function>);
}

/// Tries `symbols` in order with `register` until one registers; returns it, or the last one tried and
/// its error. `reset` puts the C structure back to its unregistered state between tries.
fn register_first(
    symbols: &[&'static CStr],
    mut reset: impl FnMut(&'static CStr),
    mut register: impl FnMut() -> c_int,
) -> (&'static CStr, Result) {
    let mut last = (c_str!("(none)"), Err(EINVAL));
    for &symbol in symbols {
        reset(symbol);
        match register() {
            0 => return (symbol, Ok(())),
            errno => last = (symbol, Err(Error::from_errno(errno))),
        }
    }
    last
}

/// A kprobe at the entry of a function, calling `H` at each hit.
///
/// # Invariants
///
/// If `status` is `Ok`, `kp` is registered (for `symbol`, with [`pre_handler::<H>`]) from construction
/// until `drop`. `kp` is the first field of this `#[repr(C)]` struct, so a pointer to it is a pointer to
/// `Self`.
#[repr(C)]
pub(crate) struct Kprobe<H: Handler> {
    kp: Opaque<bindings::kprobe>,
    symbol: &'static CStr,
    status: Result,
    handler: H,
}

// SAFETY: After construction only the kprobe core writes `kp` (under its own locking); the other fields
// are read-only and `H: Sync`.
unsafe impl<H: Handler> Sync for Kprobe<H> {}
// SAFETY: Unregistering may happen from any thread.
unsafe impl<H: Handler + Send> Send for Kprobe<H> {}

impl<H: Handler> Kprobe<H> {
    /// Registers a kprobe on the first symbol of `H::Function` that accepts one.
    pub(crate) fn new(handler: H) -> impl PinInit<Self, Error> {
        let symbols = H::Function::SYMBOLS;
        // SAFETY: The closure initialises every field of `*slot` and always returns `Ok`; `slot` is
        // pinned, so `kp` keeps its address for as long as it is registered.
        unsafe {
            pin_init_from_closure(move |slot: *mut Self| {
                addr_of_mut!((*slot).handler).write(handler);
                // `Opaque<T>` is `#[repr(transparent)]` over `T`'s storage (6.12's `raw_get` and
                // 7.x's `cast_into` return this pointer).
                let kp = addr_of_mut!((*slot).kp).cast::<bindings::kprobe>();
                let (symbol, status) = register_first(
                    symbols,
                    |symbol| {
                        kp.write(bindings::kprobe::default());
                        (*kp).symbol_name = symbol.as_char_ptr();
                        (*kp).pre_handler = Some(pre_handler::<H>);
                    },
                    || bindings::register_kprobe(kp),
                );
                // INVARIANT: `kp` was registered exactly when `status` is `Ok`.
                addr_of_mut!((*slot).symbol).write(symbol);
                addr_of_mut!((*slot).status).write(status);
                Ok(())
            })
        }
    }
}

impl<H: Handler> Probe for Kprobe<H> {
    fn via(&self) -> &'static str {
        "kprobe"
    }

    fn symbol(&self) -> &'static CStr {
        self.symbol
    }

    fn status(&self) -> Result {
        self.status
    }

    fn missed(&self) -> u64 {
        // SAFETY: `kp` is valid while `self` lives; `nmissed` is a word the core updates with plain
        // increments, so a volatile load sees a whole value.
        unsafe { addr_of_mut!((*self.kp.get()).nmissed).read_volatile() as u64 }
    }
}

impl<H: Handler> Drop for Kprobe<H> {
    fn drop(&mut self) {
        if self.status.is_ok() {
            // SAFETY: By the type invariant `kp` is registered. `unregister_kprobe` waits for handlers
            // in progress, so none runs on `self.handler` after this.
            unsafe { bindings::unregister_kprobe(self.kp.get()) };
        }
    }
}

/// `pre_handler` trampoline: recovers the [`Kprobe`] and calls its handler.
///
/// # Safety
///
/// Called by the kprobe core with the `kp` of a registered `Kprobe<H>` and valid `regs`.
unsafe extern "C" fn pre_handler<H: Handler>(
    kp: *mut bindings::kprobe,
    regs: *mut bindings::pt_regs,
) -> c_int {
    // SAFETY: `kp` is the first field of a `Kprobe<H>` whose handler is initialised before registration
    // (type invariant).
    // Only the handler is borrowed: a hit can come while `register_kprobe` runs, before `symbol` and
    // `status` are written.
    let handler = unsafe { &*core::ptr::addr_of!((*kp.cast::<Kprobe<H>>()).handler) };
    handler.hit(&Regs {
        ptr: regs,
        _lifetime: PhantomData,
    });
    0
}

/// Handles a [`Kretprobe`]: `entry` decides at entry whether to follow the call and what to remember;
/// `ret` gets that at return. Same context rules as [`Handler`].
pub(crate) trait RetHandler: Sync {
    /// The probed function.
    type Function: Function;
    /// What is kept from entry to return, in each instance's data: written there in place by `entry`
    /// and read there by `ret`, never copied whole (a handler that writes only some fields pays for
    /// those).
    type Data: Copy;
    /// Called at function entry with the instance's data, uninitialised: returns the data it wrote
    /// (what `MaybeUninit::write` gives back, so it is written), or `None` to let the call return
    /// unobserved.
    fn entry<'d>(
        &self,
        regs: &Regs<'_, Self::Function>,
        data: &'d mut MaybeUninit<Self::Data>,
    ) -> Option<&'d mut Self::Data>;
    /// Called at function return with what `entry` wrote.
    fn ret(&self, data: &Self::Data, regs: &RetRegs<'_, Self::Function>);
}

/// A kretprobe on a function, calling `H` at entry and at return.
///
/// # Invariants
///
/// As for [`Kprobe`], with `rp` (whose `kp` is its first field) in place of `kp`.
#[repr(C)]
pub(crate) struct Kretprobe<H: RetHandler> {
    rp: Opaque<bindings::kretprobe>,
    symbol: &'static CStr,
    status: Result,
    handler: H,
}

// SAFETY: As for `Kprobe`.
unsafe impl<H: RetHandler> Sync for Kretprobe<H> {}
// SAFETY: As for `Kprobe`.
unsafe impl<H: RetHandler + Send> Send for Kretprobe<H> {}

impl<H: RetHandler> Kretprobe<H> {
    /// Registers a kretprobe on the first symbol of `H::Function` that accepts one, with room for
    /// `maxactive` calls in flight at once.
    pub(crate) fn new(maxactive: i32, handler: H) -> impl PinInit<Self, Error> {
        let symbols = H::Function::SYMBOLS;
        // SAFETY: As in `Kprobe::new`.
        unsafe {
            pin_init_from_closure(move |slot: *mut Self| {
                addr_of_mut!((*slot).handler).write(handler);
                // As in `Kprobe::new`.
                let rp = addr_of_mut!((*slot).rp).cast::<bindings::kretprobe>();
                let (symbol, status) = register_first(
                    symbols,
                    |symbol| {
                        rp.write(bindings::kretprobe::default());
                        (*rp).kp.symbol_name = symbol.as_char_ptr();
                        (*rp).entry_handler = Some(ret_entry::<H>);
                        (*rp).handler = Some(ret_handler::<H>);
                        // Room to align the data up (see `instance`).
                        (*rp).data_size =
                            core::mem::size_of::<H::Data>() + core::mem::align_of::<H::Data>() - 1;
                        (*rp).maxactive = maxactive;
                    },
                    || bindings::register_kretprobe(rp),
                );
                // INVARIANT: `rp` was registered exactly when `status` is `Ok`.
                addr_of_mut!((*slot).symbol).write(symbol);
                addr_of_mut!((*slot).status).write(status);
                Ok(())
            })
        }
    }
}

impl<H: RetHandler> Probe for Kretprobe<H> {
    fn via(&self) -> &'static str {
        "kretprobe"
    }

    fn symbol(&self) -> &'static CStr {
        self.symbol
    }

    fn status(&self) -> Result {
        self.status
    }

    fn missed(&self) -> u64 {
        let rp = self.rp.get();
        // SAFETY: As in `Kprobe::missed`; `nmissed` of the kretprobe counts calls missed for lack of a
        // free instance, that of its kprobe the entries skipped.
        unsafe {
            addr_of_mut!((*rp).kp.nmissed).read_volatile() as u64
                + addr_of_mut!((*rp).nmissed).read_volatile() as u64
        }
    }
}

impl<H: RetHandler> Drop for Kretprobe<H> {
    fn drop(&mut self) {
        if self.status.is_ok() {
            // SAFETY: By the type invariant `rp` is registered. `unregister_kretprobe` waits for
            // handlers in progress and stops calls still in flight from reaching `ret_handler`.
            unsafe { bindings::unregister_kretprobe(self.rp.get()) };
        }
    }
}

/// Recovers the [`Kretprobe`] of an instance and the instance's data, aligned for `H::Data`.
///
/// # Safety
///
/// `ri` is an instance of a registered `Kretprobe<H>`, passed by the kprobe core to a handler.
unsafe fn instance<'a, H: RetHandler>(
    ri: *mut bindings::kretprobe_instance,
) -> (&'a H, *mut H::Data) {
    // SAFETY: The caller guarantees `ri` belongs to a `Kretprobe<H>`, whose `rp` is its first field and
    // whose handler is initialised before registration; only the handler is borrowed (a hit can come
    // while `register_kretprobe` runs, before `symbol` and `status` are written).
    let this = unsafe {
        &*core::ptr::addr_of!((*bindings::rrp_get_kretprobe(ri).cast::<Kretprobe<H>>()).handler)
    };
    // SAFETY: `ri` is a live instance; its `data` flexible array holds `data_size` bytes.
    let raw = unsafe { core::ptr::addr_of_mut!((*ri).data) }.cast::<u8>();
    // `data_size` has `align_of - 1` bytes more than a `H::Data`, so the aligned pointer still has room
    // for one (the header before `data` is pointer-aligned: the offset is 0 in practice).
    let pad = (raw as usize).wrapping_neg() & (core::mem::align_of::<H::Data>() - 1);
    let data = raw.wrapping_add(pad).cast::<H::Data>();
    (this, data)
}

/// `entry_handler` trampoline.
///
/// # Safety
///
/// Called by the kprobe core for an instance of a registered `Kretprobe<H>` with valid `regs`.
unsafe extern "C" fn ret_entry<H: RetHandler>(
    ri: *mut bindings::kretprobe_instance,
    regs: *mut bindings::pt_regs,
) -> c_int {
    // SAFETY: The core passes an instance of this kretprobe.
    let (this, data) = unsafe { instance::<H>(ri) };
    let regs = Regs {
        ptr: regs,
        _lifetime: PhantomData,
    };
    // SAFETY: `data` is the instance's aligned room for a `H::Data` (see `instance`), ours until the
    // return handler; `MaybeUninit` makes no claim on its contents.
    let data = unsafe { &mut *data.cast::<MaybeUninit<H::Data>>() };
    match this.entry(&regs, data) {
        // The handler returned a reference to the written data: the return handler may read it.
        Some(_) => 0,
        None => 1,
    }
}

/// Return `handler` trampoline.
///
/// # Safety
///
/// As for [`ret_entry`], for an instance whose entry handler returned 0.
unsafe extern "C" fn ret_handler<H: RetHandler>(
    ri: *mut bindings::kretprobe_instance,
    regs: *mut bindings::pt_regs,
) -> c_int {
    // SAFETY: The core passes an instance of this kretprobe.
    let (this, data) = unsafe { instance::<H>(ri) };
    // SAFETY: `ret_entry` wrote `data` for this instance (its handler returned the written data: the
    // return handler runs only for an entry that returned 0), and nothing else touches it until the
    // instance is recycled after this returns.
    let data = unsafe { &*data };
    this.ret(
        data,
        &RetRegs {
            ptr: regs,
            _lifetime: PhantomData,
        },
    );
    0
}
