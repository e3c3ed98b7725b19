// SPDX-License-Identifier: GPL-2.0

//! The interruption probes of `noise/` as one group, registered at load and by `noise_enable`: the x86
//! vectors' exits (their entries are `received`'s), the local timer's and irq_work's, arm64's IPI exits,
//! device interrupt handlers, softirqs and queued calls.

use crate::logic::engine::Engine;
use crate::logic::handlers::{Interrupts, VectorNoise};
use crate::logic::noise::Hard;
use crate::logic::probes::{fell_back, handler};
use crate::sys::kprobe::Probe;
use crate::sys::tracepoint::{TracepointProbe, Vector};
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// A tracepoint pair, exit then entry: the exit registers first and unregisters first, so that no
/// interval ends without its start (one begun as the entry goes away never ends).
type Pair<H> = (TracepointProbe<H>, TracepointProbe<H>);

/// What interrupts a CPU ([`crate::logic::noise`]); each `None` where the kernel lacks the tracepoint
/// (the x86 vectors elsewhere, `ipi_exit` on x86). The IPIs' entries are those of [`Received`].
pub(crate) struct NoiseProbes {
    /// x86: the exits of the reschedule and the two call-function vectors.
    ipi_exits: [Option<TracepointProbe<VectorNoise>>; 3],
    /// x86: the local timer and irq_work vectors.
    timer: Option<Pair<VectorNoise>>,
    irq_work: Option<Pair<VectorNoise>>,
    /// arm64: the IPIs' exits.
    ipi_exit: Option<TracepointProbe<Interrupts>>,
    irq: Option<Pair<Interrupts>>,
    softirq: Option<Pair<Interrupts>>,
    csd: Option<Pair<Interrupts>>,
}

/// `register` made, or `None` (logged on the architectures where the tracepoint should exist).
fn noise_probe<H: Send + Sync>(
    register: impl FnOnce() -> Result<TracepointProbe<H>>,
    name: &CStr,
    expected: bool,
) -> Option<TracepointProbe<H>> {
    register()
        .inspect_err(|&e| {
            if expected {
                fell_back(name.to_str().unwrap_or("?"), e, "not counted in noise/")
            }
        })
        .ok()
}

impl NoiseProbes {
    /// Registers the group: each exit before its entry.
    pub(crate) fn new(engine: &Arc<Engine>) -> Result<Self> {
        let x86 = cfg!(target_arch = "x86_64");
        let arm = cfg!(any(target_arch = "aarch64", target_arch = "arm"));
        let vector = |v: Vector, hard: Hard, entry: bool| -> Result<_> {
            let h = handler(engine, |engine| VectorNoise { engine, hard })?;
            Ok(if entry {
                noise_probe(|| TracepointProbe::vector_entry(v, h), v.entry(), x86)
            } else {
                noise_probe(|| TracepointProbe::vector_exit(v, h), v.exit(), x86)
            })
        };
        let pair = |v: Vector, hard: Hard| -> Result<Option<Pair<VectorNoise>>> {
            let Some(exit) = vector(v, hard, false)? else {
                return Ok(None);
            };
            Ok(vector(v, hard, true)?.map(|entry| (exit, entry)))
        };
        let ipi_exits = [
            vector(Vector::Reschedule, Hard::Res, false)?,
            vector(Vector::CallFunctionSingle, Hard::Cal, false)?,
            vector(Vector::CallFunction, Hard::Cal, false)?,
        ];
        let timer = pair(Vector::LocalTimer, Hard::Timer)?;
        let irq_work = pair(Vector::IrqWork, Hard::IrqWork)?;
        let h = handler(engine, |engine| Interrupts { engine })?;
        let ipi_exit = if arm {
            noise_probe(
                || TracepointProbe::ipi_exit(h.clone()),
                c_str!("ipi_exit"),
                true,
            )
        } else {
            None
        };
        macro_rules! pair {
            ($exit:ident, $entry:ident) => {
                noise_probe(
                    || TracepointProbe::$exit(h.clone()),
                    c_str!(stringify!($exit)),
                    true,
                )
                .and_then(|exit| {
                    noise_probe(
                        || TracepointProbe::$entry(h.clone()),
                        c_str!(stringify!($entry)),
                        true,
                    )
                    .map(|entry| (exit, entry))
                })
            };
        }
        Ok(Self {
            ipi_exits,
            timer,
            irq_work,
            ipi_exit,
            irq: pair!(irq_handler_exit, irq_handler_entry),
            softirq: pair!(softirq_exit, softirq_entry),
            csd: pair!(csd_function_exit, csd_function_entry),
        })
    }

    /// Which of `group`'s probes are registered (`None`: the group is off).
    pub(crate) fn status(group: Option<&Self>) -> Result<NoiseStatus> {
        let mut symbols = KVec::new();
        if let Some(noise) = group {
            for probe in noise.list().into_iter().flatten() {
                symbols.push(probe.symbol(), GFP_KERNEL)?;
            }
        }
        let has = |f: fn(&Self) -> bool| group.is_some_and(f);
        Ok(NoiseStatus {
            on: group.is_some(),
            symbols,
            irq: has(|n| n.irq.is_some()),
            softirq: has(|n| n.softirq.is_some()),
            csd: has(|n| n.csd.is_some()),
        })
    }

    /// The probes, each `None` if not registered.
    fn list(&self) -> [Option<&dyn Probe>; 14] {
        fn one<H: Send + Sync>(p: &Option<TracepointProbe<H>>) -> Option<&dyn Probe> {
            p.as_ref().map(|p| p as &dyn Probe)
        }
        fn both<H: Send + Sync>(p: &Option<Pair<H>>) -> [Option<&dyn Probe>; 2] {
            match p {
                Some((exit, entry)) => [Some(exit as &dyn Probe), Some(entry as &dyn Probe)],
                None => [None, None],
            }
        }
        let [t0, t1] = both(&self.timer);
        let [w0, w1] = both(&self.irq_work);
        let [i0, i1] = both(&self.irq);
        let [s0, s1] = both(&self.softirq);
        let [c0, c1] = both(&self.csd);
        [
            one(&self.ipi_exits[0]),
            one(&self.ipi_exits[1]),
            one(&self.ipi_exits[2]),
            one(&self.ipi_exit),
            t0,
            t1,
            w0,
            w1,
            i0,
            i1,
            s0,
            s1,
            c0,
            c1,
        ]
    }
}

/// The interruption probes, registered or not, behind the lock `noise_enable` takes. (A named type:
/// the symbols of `KBox::pin_init` spell out its type, which as a nested `Mutex<Option<..>>` grew past
/// the kernel's symbol length, see scripts/symbols.sh.)
#[pin_data]
pub(crate) struct NoiseGroup {
    #[pin]
    pub(crate) probes: Mutex<Option<NoiseProbes>>,
}

/// Which interruption probes are registered.
pub(crate) struct NoiseStatus {
    /// Whether the group is on (`noise_enable`).
    pub(crate) on: bool,
    /// The tracepoints of the registered probes.
    pub(crate) symbols: KVec<&'static CStr>,
    /// Whether device interrupts, softirqs and queued calls are timed.
    pub(crate) irq: bool,
    pub(crate) softirq: bool,
    pub(crate) csd: bool,
}
