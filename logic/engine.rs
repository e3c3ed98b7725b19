// SPDX-License-Identifier: GPL-2.0

//! The counting engine: two windows, each with its counters and stack tables, one of them active.
//!
//! Every handler loads the active window once and counts (and records its stack) there. A `reset`
//! makes the other window, empty, the active one, waits until no handler can still be counting into
//! the old one ([`rcu::synchronize`]), and only then empties the old one. So no CPU ever writes a
//! counter that another CPU may be incrementing, a reset loses or undoes no increment, every event
//! counts in exactly one window, and counters and stack tables start their window at the same instant.
//! Readers and settings take one mutex, so a reading never sees a half-emptied window and never goes
//! backwards except across a reset.

use crate::logic::callbacks::Functions;
use crate::logic::counters::{Counters, Tag};
use crate::logic::latency::Latency;
use crate::logic::noise::{Noise, NoiseCounters};
use crate::logic::stacks::{Stacks, MAX_ENTRIES};
use crate::sys::hotplug::Prepare;
use crate::sys::rcu;
use crate::sys::stacktrace::Stack;
use crate::sys::time;
use core::sync::atomic::{
    AtomicBool, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

/// What the handlers count into between two resets.
pub(crate) struct Window {
    pub(crate) counters: Counters,
    pub(crate) stacks: Stacks,
    /// What interrupted each CPU, and for how long.
    pub(crate) noise: NoiseCounters,
    /// When the window became the active one ([`time::now_ns`]).
    started: AtomicU64,
}

impl Window {
    fn new(cpus: usize) -> Result<Self> {
        Ok(Self {
            counters: Counters::new(cpus)?,
            stacks: Stacks::new()?,
            noise: NoiseCounters::new()?,
            started: AtomicU64::new(time::now_ns()),
        })
    }

    /// Empties the window. Only for the window no handler counts into any more.
    fn clear(&self) {
        self.counters.zero();
        self.stacks.clear();
        self.noise.zero();
    }

    /// The clock reading (`time::now_ns()`) at which the window became the active one.
    pub(crate) fn started_ns(&self) -> u64 {
        self.started.load(Relaxed)
    }

    /// Nanoseconds since the window became the active one.
    pub(crate) fn age_ns(&self) -> u64 {
        time::now_ns().saturating_sub(self.started.load(Relaxed))
    }
}

/// The two windows, which one is active, and the stack-recording settings.
#[pin_data]
pub(crate) struct Engine {
    windows: [Window; 2],
    /// Index of the active window.
    active: AtomicUsize,
    stacks_on: AtomicBool,
    capacity: AtomicUsize,
    /// The functions queued for other CPUs, by slot (kept across resets).
    functions: Functions,
    /// The intervals in progress (they end in whichever window is active then).
    latency: Latency,
    /// The interruptions in progress on each CPU, and its slots (kept across resets).
    noise: Noise,
    /// Held by resets, setting changes and readers.
    #[pin]
    settings: Mutex<()>,
}

impl Engine {
    /// Allocates both windows for CPU ids below `cpus`; stack recording off.
    pub(crate) fn new(cpus: usize) -> Result<impl PinInit<Self>> {
        let windows = [Window::new(cpus)?, Window::new(cpus)?];
        let functions = Functions::new()?;
        let latency = Latency::new(cpus)?;
        let noise = Noise::new()?;
        Ok(pin_init!(Self {
            windows,
            active: AtomicUsize::new(0),
            stacks_on: AtomicBool::new(false),
            capacity: AtomicUsize::new(MAX_ENTRIES),
            functions,
            latency,
            noise,
            settings <- new_mutex!(()),
        }))
    }

    /// Bytes the engine takes for `cpus` CPU ids: two windows of counters (per-cpu memory), stack
    /// tables and interruption counters, the latency starts and the interruption state.
    pub(crate) fn bytes(cpus: usize) -> usize {
        2 * (Counters::bytes(cpus) + Stacks::bytes(cpus) + cpus * NoiseCounters::bytes_per_cpu())
            + Latency::bytes(cpus)
            + cpus * Noise::bytes_per_cpu()
    }

    /// The window handlers count into now. A handler loads it once and uses it for all it counts.
    #[inline]
    pub(crate) fn window(&self) -> &Window {
        &self.windows[self.active.load(Acquire) & 1]
    }

    /// The functions queued for other CPUs, by slot.
    #[inline]
    pub(crate) fn functions(&self) -> &Functions {
        &self.functions
    }

    /// The interruptions in progress, and each CPU's slots.
    #[inline]
    pub(crate) fn noise(&self) -> &Noise {
        &self.noise
    }

    /// The latency intervals in progress.
    #[inline]
    pub(crate) fn latency(&self) -> &Latency {
        &self.latency
    }

    /// Turns latency recording on or off; once this returns after turning it off, no handler is still
    /// measuring. Turning it on forgets the intervals begun before it was off.
    pub(crate) fn set_latency_enabled(&self, on: bool) {
        let _guard = self.settings.lock();
        if on == self.latency.enabled() {
            return;
        }
        self.latency.set_enabled(on);
        if !on {
            rcu::synchronize();
        }
    }

    /// Whether hits record their stacks.
    #[inline]
    pub(crate) fn stacks_enabled(&self) -> bool {
        self.stacks_on.load(Relaxed)
    }

    /// Records `stack` for a hit of `tag` in `window`, if recording is on.
    #[inline]
    pub(crate) fn record(&self, window: &Window, tag: Tag, stack: &Stack) {
        if self.stacks_enabled() {
            window
                .stacks
                .record(tag, stack, self.capacity.load(Relaxed));
        }
    }

    /// Starts a new window: every counter and stack table reads zero, as one step.
    pub(crate) fn reset(&self) {
        let _guard = self.settings.lock();
        let old = self.active.load(Relaxed) & 1;
        self.windows[1 - old].started.store(time::now_ns(), Relaxed);
        self.active.store(1 - old, Release);
        rcu::synchronize();
        // No handler counts into `old` any more; it is the next reset's empty window. An interval begun
        // before would end in the new window, spanning the reset: forget them (those begun since the
        // switch too: a few lost, none spanning).
        self.latency.forget();
        self.windows[old].clear();
    }

    /// Turns stack recording on or off; once this returns after turning it off, no handler is still
    /// recording. The tables keep what they hold.
    pub(crate) fn set_stacks_enabled(&self, on: bool) {
        let _guard = self.settings.lock();
        self.stacks_on.store(on, Relaxed);
        if !on {
            rcu::synchronize();
        }
    }

    /// Entries each stack table may use.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(Relaxed)
    }

    /// Lets each table use `capacity` entries (1 to [`MAX_ENTRIES`]) and empties the tables of both
    /// windows, whose slots depend on it. Refused with `EBUSY` while recording is on.
    pub(crate) fn set_capacity(&self, capacity: usize) -> Result {
        if !(1..=MAX_ENTRIES).contains(&capacity) {
            return Err(EINVAL);
        }
        let _guard = self.settings.lock();
        if self.stacks_enabled() {
            return Err(EBUSY);
        }
        // Recording is off, and turning it off waited for the last recording handler.
        self.capacity.store(capacity, Relaxed);
        for window in &self.windows {
            window.stacks.clear();
        }
        Ok(())
    }

    /// Calls `f` with the active window; no reset or setting change happens meanwhile.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Window) -> R) -> R {
        let _guard = self.settings.lock();
        f(self.window())
    }
}

impl Prepare for Engine {
    /// Forgets the intervals in progress towards `cpu`, which is about to come online.
    fn prepare(&self, cpu: usize) {
        self.latency.forget_cpu(cpu);
    }
}
