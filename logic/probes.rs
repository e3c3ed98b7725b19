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
    CsdQueue, IdleWake, IpiCpu, IpiEntryReceived, IpiMany, IpiMask, IpiOne, IpiReceived,
    NeedResched, Resched, Wakelist,
};
use crate::logic::latency::Kind;
use crate::logic::noise::{NoiseGroup, NoiseProbes, NoiseStatus};
use crate::sys::cpu;
use crate::sys::kprobe::{Handler, Kprobe, Kretprobe, Probe};
use crate::sys::probed::{SendCallFuncSingleIpi, SmpSendReschedule};
use crate::sys::tracepoint::TracepointProbe;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Arc;

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

/// Logs that the tracepoint `name` could not be used (error `e`) and what counts `what` instead.
pub(crate) fn fell_back(name: &str, e: Error, instead: &str) {
    pr_info!("tracepoint {name}: error {}; {instead}\n", e.to_errno());
}

/// A handler holding only the engine, shared by the probe that calls it.
pub(crate) fn handler<T>(
    engine: &Arc<Engine>,
    new: impl FnOnce(Arc<Engine>) -> T,
) -> Result<Arc<T>> {
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
        NoiseProbes::status(self.noise.probes.lock().as_ref())
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
