// SPDX-License-Identifier: GPL-2.0

//! The probes that make up the module: for each tag, its tracepoint where the kernel has it, else its
//! fallback, each calling its handler of [`crate::logic::handlers`].
//!
//! IPI sends come from the kernel's own `ipi:ipi_send_cpu` and `ipi:ipi_send_cpumask` tracepoints
//! (6.4+: a direct call, no register save, no kprobe lookup), with kprobes on the x86 `native_*` send
//! functions as the fallback where a tracepoint is missing. `ttwu_queue_wakelist` has no tracepoint, but
//! each wakeup it queues is queued through `csd:csd_queue_cpu` as a task's wakelist entry: WKL counts
//! there (a kretprobe on the function is the fallback). Reschedule requests come from
//! `sched_set_need_resched_tp` where the kernel has it (6.16+: each need-resched flag newly set, lazy or
//! not), else from a kprobe on `__resched_curr` or `resched_curr` (each call, flag already set or not).
//! The probed functions' symbols and typed arguments are in [`crate::sys::probed`].

use crate::logic::counters::Tag;
use crate::logic::engine::Engine;
use crate::logic::handlers::{
    CsdQueue, IdleWake, Interrupts, IpiCpu, IpiEntryReceived, IpiMany, IpiMask, IpiOne,
    IpiReceived, NeedResched, Resched, VectorNoise, Wakelist,
};
use crate::logic::latency::Kind;
use crate::logic::noise::Hard;
use crate::sys::cpu;
use crate::sys::kprobe::{Handler, Kprobe, Kretprobe, Probe};
use crate::sys::probed::{SendCallFuncSingleIpi, SmpSendReschedule};
use crate::sys::tracepoint::{TracepointProbe, Vector};
use kernel::c_str;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Whether this build counts with the fallbacks only (`make fallback`: Kbuild's `rrp_fallback_only`), as
/// on a kernel without the `ipi:*` and `csd:*` tracepoints: kprobes on the send functions and a
/// kretprobe on `ttwu_queue_wakelist`. The boot test checks that build too.
fn fallback_only() -> bool {
    cfg!(rrp_fallback_only)
}

/// The tracepoint probe `register` makes, or `ENOENT` in a fallback-only build.
fn unless_fallback<T>(register: impl FnOnce() -> Result<T>) -> Result<T> {
    if fallback_only() {
        Err(ENOENT)
    } else {
        register()
    }
}

/// How received IPIs are counted.
enum Received {
    /// x86 `irq_vectors:*_entry`, one per kind of [`Kind::ALL`] (`None` where the kernel lacks it).
    Vectors([Option<TracepointProbe<IpiReceived>>; 3]),
    /// arm64 `ipi:ipi_entry`: one tracepoint for every IPI; the call-function kinds are not apart.
    /// Held to stay registered.
    IpiEntry {
        _probe: TracepointProbe<IpiEntryReceived>,
    },
}

/// How IPI sends to one CPU (RES, CFS) are counted: the tracepoint, or kprobes on both send functions.
enum OneTarget {
    Tracepoint(TracepointProbe<IpiCpu>),
    Kprobes {
        res: Pin<KBox<Kprobe<IpiOne<SmpSendReschedule>>>>,
        cfs: Pin<KBox<Kprobe<IpiOne<SendCallFuncSingleIpi>>>>,
    },
}

/// How call-function IPIs to a mask (CFM) are counted.
enum ManyTargets {
    Tracepoint(TracepointProbe<IpiMask>),
    Kprobe(Pin<KBox<Kprobe<IpiMany>>>),
}

/// How queued wakeups (WKL) are counted.
enum Wakeups {
    /// `csd:csd_queue_cpu`, which also counts `callbacks`.
    Tracepoint(TracepointProbe<CsdQueue>),
    /// A kretprobe on `ttwu_queue_wakelist`, where the tracepoint is missing (no `callbacks` then).
    Kretprobe(Pin<KBox<Kretprobe<Wakelist>>>),
}

/// How reschedule requests (RSC) are counted.
enum Requests {
    /// `sched_set_need_resched_tp`: each flag newly set.
    Tracepoint(TracepointProbe<NeedResched>),
    /// A kprobe on `__resched_curr` or `resched_curr`, where the tracepoint is missing: each call.
    Kprobe(Pin<KBox<Kprobe<Resched>>>),
}

/// A tracepoint pair, exit then entry: the exit registers first and unregisters first, so that no
/// interval ends without its start (one begun as the entry goes away never ends).
type Pair<H> = (TracepointProbe<H>, TracepointProbe<H>);

/// What interrupts a CPU ([`crate::logic::noise`]); each `None` where the kernel lacks the tracepoint
/// (the x86 vectors elsewhere, `ipi_exit` on x86). The IPIs' entries are those of [`Received`].
struct NoiseProbes {
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
    fn new(engine: &Arc<Engine>) -> Result<Self> {
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

/// Every probe of the module; dropping it unregisters them all.
pub(crate) struct Probes {
    one: OneTarget,
    many: ManyTargets,
    rsc: Requests,
    wkl: Wakeups,
    /// The receive side.
    received: Received,
    /// Idle CPUs woken without an IPI (`None` where the kernel lacks the tracepoint: NIP stays 0,
    /// and the load says so). Held to stay registered.
    _idle: Option<TracepointProbe<IdleWake>>,
    /// What interrupts each CPU, while `noise_enable` is 1 (`None`: unregistered).
    noise: Pin<KBox<NoiseGroup>>,
    /// What the interruption probes count into, to register them again.
    engine: Arc<Engine>,
}

/// The interruption probes, registered or not, behind the lock `noise_enable` takes. (A named type:
/// the symbols of `KBox::pin_init` spell out its type, which as a nested `Mutex<Option<..>>` grew past
/// the kernel's symbol length, see scripts/symbols.sh.)
#[pin_data]
struct NoiseGroup {
    #[pin]
    probes: Mutex<Option<NoiseProbes>>,
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

/// Logs that the tracepoint `name` could not be used (error `e`) and what counts `what` instead.
fn fell_back(name: &str, e: Error, instead: &str) {
    pr_info!("tracepoint {name}: error {}; {instead}\n", e.to_errno());
}

/// A handler holding only the engine, shared by the probe that calls it.
fn handler<T>(engine: &Arc<Engine>, new: impl FnOnce(Arc<Engine>) -> T) -> Result<Arc<T>> {
    Ok(Arc::new(new(engine.clone()), GFP_KERNEL)?)
}

/// A kprobe calling `handler`, registered (or failed: see [`Probe::status`]).
fn kprobe<H: Handler>(handler: H) -> Result<Pin<KBox<Kprobe<H>>>> {
    KBox::pin_init(Kprobe::new(handler), GFP_KERNEL)
}

impl Received {
    /// x86's vector tracepoints; arm and arm64 fire `ipi:ipi_entry` instead (other architectures have
    /// it but never fire it, so it is not tried there: `received` then says "not counted").
    fn new(engine: &Arc<Engine>) -> Result<Self> {
        let vector = |kind: Kind| -> Result<Option<TracepointProbe<IpiReceived>>> {
            let vector = kind.vector();
            let handler = handler(engine, |engine| IpiReceived { engine, kind })?;
            let tp = TracepointProbe::vector_entry(vector, handler);
            Ok(tp
                .inspect_err(|e| {
                    if cfg!(target_arch = "x86_64") {
                        pr_info!(
                            "tracepoint {}: error {}; {} not counted as received\n",
                            vector.entry().to_str().unwrap_or("?"),
                            e.to_errno(),
                            kind.name()
                        )
                    }
                })
                .ok())
        };
        let vectors = [vector(Kind::Res)?, vector(Kind::Cfs)?, vector(Kind::Cfm)?];
        if !cfg!(any(target_arch = "aarch64", target_arch = "arm")) {
            return Ok(Self::Vectors(vectors));
        }
        let handler = handler(engine, |engine| IpiEntryReceived { engine })?;
        Ok(match TracepointProbe::ipi_entry(handler) {
            Ok(tp) => Self::IpiEntry { _probe: tp },
            Err(e) => {
                fell_back("ipi_entry", e, "received IPIs not counted");
                Self::Vectors(vectors)
            }
        })
    }
}

impl OneTarget {
    fn new(engine: &Arc<Engine>) -> Result<Self> {
        let tp = handler(engine, |engine| IpiCpu { engine })?;
        Ok(
            match unless_fallback(|| TracepointProbe::ipi_send_cpu(tp)) {
                Ok(tp) => Self::Tracepoint(tp),
                Err(e) => {
                    fell_back("ipi_send_cpu", e, "RES and CFS by kprobes");
                    Self::Kprobes {
                        res: kprobe(IpiOne::new(engine, Kind::Res))?,
                        cfs: kprobe(IpiOne::new(engine, Kind::Cfs))?,
                    }
                }
            },
        )
    }
}

impl ManyTargets {
    fn new(engine: &Arc<Engine>) -> Result<Self> {
        let tp = handler(engine, |engine| IpiMask { engine })?;
        Ok(
            match unless_fallback(|| TracepointProbe::ipi_send_cpumask(tp)) {
                Ok(tp) => Self::Tracepoint(tp),
                Err(e) => {
                    fell_back("ipi_send_cpumask", e, "CFM by kprobe");
                    Self::Kprobe(kprobe(IpiMany {
                        engine: engine.clone(),
                    })?)
                }
            },
        )
    }
}

impl Wakeups {
    fn new(engine: &Arc<Engine>) -> Result<Self> {
        let tp = handler(engine, |engine| CsdQueue { engine })?;
        Ok(
            match unless_fallback(|| TracepointProbe::csd_queue_cpu(tp)) {
                Ok(tp) => Self::Tracepoint(tp),
                Err(e) => {
                    fell_back("csd_queue_cpu", e, "WKL by kretprobe, no callbacks");
                    // Calls in flight at once: one per CPU and context (task, softirq, hardirq, NMI),
                    // twice over, so that a lack of instances never drops a wakeup.
                    let instances = 8 * cpu::nr_cpu_ids() as i32;
                    let wakelist = Wakelist {
                        engine: engine.clone(),
                    };
                    Self::Kretprobe(KBox::pin_init(
                        Kretprobe::new(instances, wakelist),
                        GFP_KERNEL,
                    )?)
                }
            },
        )
    }
}

impl Requests {
    fn new(engine: &Arc<Engine>) -> Result<Self> {
        let tp = handler(engine, |engine| NeedResched { engine })?;
        Ok(
            match unless_fallback(|| TracepointProbe::set_need_resched(tp)) {
                Ok(tp) => Self::Tracepoint(tp),
                Err(e) => {
                    fell_back("sched_set_need_resched_tp", e, "RSC by kprobe");
                    Self::Kprobe(kprobe(Resched {
                        engine: engine.clone(),
                    })?)
                }
            },
        )
    }
}

impl Probes {
    /// Registers every probe counting into `engine`, each by its tracepoint where the kernel has it,
    /// else by its fallback. A probe that fails is logged and left out; if none registers, this fails
    /// with the first error.
    pub(crate) fn new(engine: &Arc<Engine>) -> Result<Self> {
        // The interruptions first, their exits before the IPIs' entries (in `received`).
        let probes = Some(NoiseProbes::new(engine)?);
        let noise = KBox::pin_init(
            pin_init!(NoiseGroup {
                probes <- new_mutex!(probes),
            }),
            GFP_KERNEL,
        )?;
        // The receive side next: an IPI is then never counted as sent (and as coalesced) for want
        // of its receive probe.
        let received = Received::new(engine)?;
        let idle = handler(engine, |engine| IdleWake { engine })?;
        let idle = TracepointProbe::wake_idle_without_ipi(idle)
            .inspect_err(|&e| fell_back("sched_wake_idle_without_ipi", e, "NIP not counted"))
            .ok();
        Self {
            one: OneTarget::new(engine)?,
            many: ManyTargets::new(engine)?,
            rsc: Requests::new(engine)?,
            wkl: Wakeups::new(engine)?,
            received,
            _idle: idle,
            noise,
            engine: engine.clone(),
        }
        .registered()
    }

    /// `self` when at least one probe registered (those that failed are logged), else the first
    /// error.
    fn registered(self) -> Result<Self> {
        let mut first_error = None;
        let mut registered = 0;
        for (tag, probe) in self.list() {
            match probe.status() {
                Ok(()) => registered += 1,
                Err(e) => {
                    pr_warn!(
                        "{} {} on {} failed: {}\n",
                        tag.name(),
                        probe.via(),
                        probe.symbol().to_str().unwrap_or("?"),
                        e.to_errno()
                    );
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if registered == 0 => Err(e),
            _ => Ok(self),
        }
    }

    /// Whether IPIs of `kind` are counted as received.
    pub(crate) fn has_received(&self, kind: Kind) -> bool {
        match &self.received {
            Received::Vectors(v) => v[kind as usize].is_some(),
            Received::IpiEntry { .. } => true,
        }
    }

    /// Whether received call-function IPIs are counted apart per kind (x86's two vectors), or all
    /// under CFS (arm64's one IPI).
    pub(crate) fn received_calls_apart(&self) -> bool {
        matches!(self.received, Received::Vectors(_))
    }

    /// Which interruption probes are registered.
    pub(crate) fn noise(&self) -> Result<NoiseStatus> {
        let guard = self.noise.probes.lock();
        let mut symbols = KVec::new();
        if let Some(noise) = guard.as_ref() {
            for probe in noise.list().into_iter().flatten() {
                symbols.push(probe.symbol(), GFP_KERNEL)?;
            }
        }
        let has = |f: fn(&NoiseProbes) -> bool| guard.as_ref().is_some_and(f);
        Ok(NoiseStatus {
            on: guard.is_some(),
            symbols,
            irq: has(|n| n.irq.is_some()),
            softirq: has(|n| n.softirq.is_some()),
            csd: has(|n| n.csd.is_some()),
        })
    }

    /// Registers the interruption probes (`on`), or unregisters them, waiting for their handlers in
    /// flight; nothing when they already are as asked.
    pub(crate) fn set_noise(&self, on: bool) -> Result {
        let mut guard = self.noise.probes.lock();
        if on == guard.is_some() {
            return Ok(());
        }
        let noise = self.engine.noise();
        if on {
            // No interruption probe is registered and the IPI entries skip the group: no handler
            // writes the intervals in progress, left from before the group went off. Forget them,
            // then register (exits first), then let the IPI entries start intervals again.
            noise.forget();
            *guard = Some(NoiseProbes::new(&self.engine)?);
            noise.set_on(true);
        } else {
            noise.set_on(false);
            // Unregisters every probe of the group, each waiting for its handlers in flight (the
            // IPI entries' too: `tracepoint_synchronize_unregister()` waits for every probe).
            *guard = None;
        }
        Ok(())
    }

    /// Whether `csd:csd_queue_cpu` counts the queued functions (and the queued wakeups).
    pub(crate) fn has_callbacks(&self) -> bool {
        matches!(self.wkl, Wakeups::Tracepoint(_))
    }

    /// The probes with their tags, in display order ([`Tag::ALL`]); RES and CFS share the
    /// `ipi_send_cpu` tracepoint when it is used.
    pub(crate) fn list(&self) -> [(Tag, &dyn Probe); Tag::ALL.len()] {
        let (res, cfs): (&dyn Probe, &dyn Probe) = match &self.one {
            OneTarget::Tracepoint(tp) => (tp, tp),
            OneTarget::Kprobes { res, cfs } => (&**res, &**cfs),
        };
        let cfm: &dyn Probe = match &self.many {
            ManyTargets::Tracepoint(tp) => tp,
            ManyTargets::Kprobe(kp) => &**kp,
        };
        let rsc: &dyn Probe = match &self.rsc {
            Requests::Tracepoint(tp) => tp,
            Requests::Kprobe(kp) => &**kp,
        };
        let wkl: &dyn Probe = match &self.wkl {
            Wakeups::Tracepoint(tp) => tp,
            Wakeups::Kretprobe(rp) => &**rp,
        };
        [
            (Tag::Res, res),
            (Tag::Cfs, cfs),
            (Tag::Cfm, cfm),
            (Tag::Rsc, rsc),
            (Tag::Wkl, wkl),
        ]
    }
}
