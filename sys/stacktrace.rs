// SPDX-License-Identifier: GPL-2.0

//! Kernel stacks: safe wrappers over the unwinder (from a probe's registers) and over `kallsyms`.
//!
//! C headers: [`arch/x86/include/asm/unwind.h`](srctree/arch/x86/include/asm/unwind.h),
//! [`include/linux/kallsyms.h`](srctree/include/linux/kallsyms.h)

use super::bindings;
use super::kprobe::Function;
use super::kprobe::Regs;
use core::fmt::{self, Write};
#[cfg(target_arch = "x86_64")]
use core::mem::MaybeUninit;
use kernel::prelude::*;

/// Whether this architecture records stacks: x86-64, through the unwinder `stack_trace_save_regs()`
/// uses (`unwind_start()` from a probe's registers). arm64 exports no unwinder that starts from
/// registers, and `stack_trace_save()` from a kprobe handler would begin in the kprobe core.
pub(crate) const SUPPORTED: bool = cfg!(target_arch = "x86_64");

/// The error of a request for stacks where they are not [`SUPPORTED`]: `EOPNOTSUPP` (the 6.12
/// `kernel` crate does not name it).
pub(crate) fn unsupported() -> Error {
    Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32))
}

/// The most frames a [`Stack`] keeps, innermost first.
pub(crate) const MAX_FRAMES: usize = 16;

/// A kernel stack of at most [`MAX_FRAMES`] return addresses, innermost first; unused frames are 0.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stack {
    pub(crate) frames: [usize; MAX_FRAMES],
}

impl Stack {
    /// The stack of the probed function at a probe hit: its own address (`regs->ip`), then the return
    /// addresses the unwinder finds from `regs`, as `stack_trace_save_regs()` and perf record them.
    ///
    /// Runs in probe handlers: at most [`MAX_FRAMES`] unwinder steps, no allocation, no sleeping.
    ///
    /// Empty (no frames) when this CPU is already taking a stack in this context (see [`unwinding`]).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn from_regs<F: Function>(regs: &Regs<'_, F>) -> Self {
        unwinding(|| Self::unwind_regs(regs)).unwrap_or(Self {
            frames: [0; MAX_FRAMES],
        })
    }

    #[cfg(target_arch = "x86_64")]
    fn unwind_regs<F: Function>(regs: &Regs<'_, F>) -> Self {
        let mut frames = [0usize; MAX_FRAMES];
        frames[0] = regs.ip();
        let mut state = MaybeUninit::<bindings::unwind_state>::uninit();
        // SAFETY: `state` is writable storage for an `unwind_state`; `regs` are the registers the kprobe
        // core passed to the running handler, on the current task's stack.
        unsafe { bindings::rrp_unwind_start(state.as_mut_ptr(), regs.as_ptr()) };
        for frame in frames.iter_mut().skip(1) {
            // SAFETY: `unwind_start` initialised `state`.
            if unsafe { bindings::rrp_unwind_done(state.as_mut_ptr()) } {
                break;
            }
            // SAFETY: As above; a frame the unwinder cannot place gives 0.
            let addr = unsafe { bindings::unwind_get_return_address(state.as_mut_ptr()) };
            if addr == 0 {
                break;
            }
            *frame = addr as usize;
            // SAFETY: As above.
            unsafe { bindings::unwind_next_frame(state.as_mut_ptr()) };
        }
        Self { frames }
    }

    /// The stack of the code that fired a tracepoint, taken in its probe: the return addresses the
    /// unwinder finds from here, without this module's frames and without a frame for which `skip`
    /// is true (the tracepoint's iterator), so that it starts in the function that fired it.
    ///
    /// Runs in probe handlers: at most `MAX_FRAMES` recorded frames and as many skipped (the module's
    /// and the iterator's), no allocation, no sleeping.
    ///
    /// Empty (no frames) when this CPU is already taking a stack in this context (see [`unwinding`]).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn from_here(skip: impl Fn(usize) -> bool) -> Self {
        unwinding(|| Self::unwind_here(skip)).unwrap_or(Self {
            frames: [0; MAX_FRAMES],
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn unwind_here(skip: impl Fn(usize) -> bool) -> Self {
        let mut frames = [0usize; MAX_FRAMES];
        let mut state = MaybeUninit::<bindings::unwind_state>::uninit();
        // SAFETY: `state` is writable storage for an `unwind_state`; the unwind is of the current task,
        // from the helper's own frame.
        unsafe { bindings::rrp_unwind_start_here(state.as_mut_ptr()) };
        let mut n = 0;
        let mut skipped = 0;
        while n < MAX_FRAMES && skipped < MAX_FRAMES {
            // SAFETY: `unwind_start` initialised `state`.
            if unsafe { bindings::rrp_unwind_done(state.as_mut_ptr()) } {
                break;
            }
            // SAFETY: As above; a frame the unwinder cannot place gives 0.
            let addr = unsafe { bindings::unwind_get_return_address(state.as_mut_ptr()) } as usize;
            if addr == 0 {
                break;
            }
            // SAFETY: `within_module` only compares the address with the module's layout.
            let leading = n == 0
                && (unsafe { bindings::rrp_within_this_module(addr as kernel::ffi::c_ulong) }
                    || skip(addr));
            if leading {
                skipped += 1;
            } else {
                frames[n] = addr;
                n += 1;
            }
            // SAFETY: As above.
            unsafe { bindings::unwind_next_frame(state.as_mut_ptr()) };
        }
        Self { frames }
    }

    /// Where the kernel exports no unwinder that starts from a probe's registers (arm64), no frames:
    /// [`SUPPORTED`] is false there and stack recording cannot be turned on.
    #[cfg(not(target_arch = "x86_64"))]
    pub(crate) fn from_regs<F: Function>(_regs: &Regs<'_, F>) -> Self {
        Self {
            frames: [0; MAX_FRAMES],
        }
    }

    /// As [`Stack::from_regs`]: no frames where [`SUPPORTED`] is false.
    #[cfg(not(target_arch = "x86_64"))]
    pub(crate) fn from_here(_skip: impl Fn(usize) -> bool) -> Self {
        Self {
            frames: [0; MAX_FRAMES],
        }
    }

    /// Whether no frame was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.frames[0] == 0
    }

    /// The frames recorded, innermost first.
    pub(crate) fn frames(&self) -> impl Iterator<Item = usize> + '_ {
        self.frames.iter().copied().take_while(|&f| f != 0)
    }
}

/// Runs `f` (which takes a stack) unless this CPU is already taking one in this context: the unwinder can
/// fire a tracepoint the module probes (its RCU read sections may end in `rcu_read_unlock_special()`,
/// which sets need-resched: `sched_set_need_resched_tp` on 7.x), and a stack taken in that probe would
/// recurse until the kernel stack overflowed. Callers are probe handlers (preemption off).
#[cfg(target_arch = "x86_64")]
fn unwinding<R>(f: impl FnOnce() -> R) -> Option<R> {
    // SAFETY: Preemption is off (probe handlers): the per-cpu bit stays this CPU's until the exit below.
    if !unsafe { bindings::rrp_unwind_enter() } {
        return None;
    }
    let r = f();
    // SAFETY: Leaves what the enter above entered, in the same context on the same CPU.
    unsafe { bindings::rrp_unwind_exit() };
    Some(r)
}

/// Room for one symbol name as `kallsyms` prints it (`KSYM_SYMBOL_LEN`, rounded up).
const SYMBOL_LEN: usize = 1024;

/// Names code addresses as `function+0xoff` (with ` [module]` for module code), never as a raw address.
pub(crate) struct Symbolizer {
    buf: KVec<u8>,
}

impl Symbolizer {
    /// Allocates the buffer `kallsyms` writes into.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            buf: KVec::from_elem(0, SYMBOL_LEN, GFP_KERNEL)?,
        })
    }

    /// Writes the name of return address `addr` (looked up as `addr - 1`, as backtraces are, so that
    /// a call at the end of a function names that function): `function+0xoff [module]`, or `?` when no
    /// symbol covers it.
    pub(crate) fn write(&mut self, out: &mut impl Write, addr: usize) -> fmt::Result {
        // SAFETY: `buf` holds `SYMBOL_LEN` (>= `KSYM_SYMBOL_LEN`, else the helper refuses) writable
        // bytes; `%pB` only reads kernel symbol tables for `addr`.
        let len = unsafe {
            bindings::rrp_sprint_backtrace(
                self.buf.as_mut_ptr().cast(),
                SYMBOL_LEN,
                addr as kernel::ffi::c_ulong,
            )
        };
        let text = usize::try_from(len)
            .ok()
            .and_then(|len| self.buf.get(..len))
            .unwrap_or(&[]);
        let (name, module) = short_symbol(text);
        out.write_str(core::str::from_utf8(name).unwrap_or("?"))?;
        if !module.is_empty() {
            out.write_str(" ")?;
            out.write_str(core::str::from_utf8(module).unwrap_or("?"))?;
        }
        Ok(())
    }
}

impl Symbolizer {
    /// Writes the name of the function at `addr` (`%ps`: `function`, with ` [module]` for module code),
    /// or `?` when no symbol covers it.
    pub(crate) fn write_function(&mut self, out: &mut impl Write, addr: usize) -> fmt::Result {
        // SAFETY: As in `write`; `%ps` only reads kernel symbol tables for `addr`.
        let len = unsafe {
            bindings::rrp_sprint_function(
                self.buf.as_mut_ptr().cast(),
                SYMBOL_LEN,
                addr as kernel::ffi::c_ulong,
            )
        };
        let text = usize::try_from(len)
            .ok()
            .and_then(|len| self.buf.get(..len))
            .unwrap_or(&[]);
        if text.is_empty() || text.starts_with(b"0x") {
            return out.write_str("?");
        }
        out.write_str(core::str::from_utf8(text).unwrap_or("?"))
    }
}

impl Symbolizer {
    /// How many of `stack`'s innermost frames belong to the tracepoint machinery rather than to the
    /// code that fired the tracepoint: 7.x calls probes from an out-of-line `__do_trace_<name>()`, one
    /// copy per file that fires the tracepoint (include/linux/tracepoint.h), where 6.12 inlined that
    /// call; those frames are left out of what is shown (they are part of what is counted).
    ///
    /// A plain loop on purpose: the iterator adapters it replaced (`copied().take_while().count()`)
    /// monomorphised into a 513-character symbol, and a module symbol of `KSYM_NAME_LEN` (512)
    /// characters or more crashes every printer of a stack that passes through it (see
    /// `scripts/symbols.sh`).
    pub(crate) fn tracepoint_frames(&mut self, stack: &Stack) -> usize {
        let mut name = Name::default();
        let mut n = 0;
        for addr in stack.frames() {
            name.clear();
            if self.write_function(&mut name, addr).is_err() || !name.starts_with("__do_trace_") {
                break;
            }
            n += 1;
        }
        n
    }
}

/// The start of a function name, written by [`Symbolizer::write_function`] (what does not fit is
/// dropped). Indexing is checked (`get`): no panic path (see [`short_symbol`]).
#[derive(Default)]
struct Name {
    bytes: [u8; 32],
    len: usize,
}

impl Name {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn starts_with(&self, prefix: &str) -> bool {
        self.bytes
            .get(..self.len)
            .is_some_and(|b| b.starts_with(prefix.as_bytes()))
    }
}

impl Write for Name {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (dst, &b) in self.bytes.iter_mut().skip(self.len).zip(s.as_bytes()) {
            *dst = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Splits `function+0xoff/0xsize [module]` into `function+0xoff` and `[module]` (empty for the core
/// kernel); an unnamed address (`0x...`) gives `?`. Works on bytes with `get`: slicing a `str` by index
/// brings in a panic path (`str::slice_error_fail`) that this kernel's objtool does not know.
fn short_symbol(text: &[u8]) -> (&[u8], &[u8]) {
    if text.is_empty() || text.starts_with(b"0x") {
        return (b"?", b"");
    }
    let Some(slash) = text.iter().position(|&b| b == b'/') else {
        return (text, b"");
    };
    let rest = text.get(slash..).unwrap_or(b"");
    let module = rest
        .iter()
        .position(|&b| b == b'[')
        .and_then(|i| rest.get(i..))
        .unwrap_or(b"");
    (text.get(..slash).unwrap_or(b"?"), module)
}
