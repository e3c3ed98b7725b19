// SPDX-License-Identifier: GPL-2.0

//! Who asked for the call-function IPIs: the functions queued to run on other CPUs
//! (`csd:csd_queue_cpu`), counted per sending CPU, in a bounded table of function addresses fixed at
//! load (never raw addresses in the files: they show the functions' names).
//!
//! One queued call is not one IPI: a CPU whose queue is not empty is not sent another (`CFS`), and one
//! call-function IPI to a mask (`CFM`) delivers one call to each CPU of it. So the counts here are of
//! calls queued, at least the CFS IPIs sent and the CFM targets, and they name the work. The handler
//! is [`crate::logic::probes::CsdQueue`] (the same tracepoint counts the queued wakeups, WKL).

use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use kernel::prelude::*;

/// The most distinct functions counted; later ones count as `dropped`.
pub(crate) const MAX_FUNCS: usize = 64;

/// The functions seen, each in the slot it claimed at its first call (0: free). Slots are never freed,
/// so a function keeps its slot (and its counters their meaning) across resets.
pub(crate) struct Functions {
    slots: [AtomicUsize; MAX_FUNCS],
}

impl Functions {
    /// An empty table.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            slots: core::array::from_fn(|_| AtomicUsize::new(0)),
        })
    }

    /// The slot of `func`, claimed (one compare-and-swap) at its first sight; `None` when every slot is
    /// another function's. No lock, no allocation: it runs in the tracepoint. A function is most often
    /// in its home slot (one load and a compare); the table is an array, so the probe carries no bounds
    /// check.
    #[inline]
    pub(crate) fn slot(&self, func: usize) -> Option<usize> {
        if func == 0 {
            return None;
        }
        let home = ((func >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) % MAX_FUNCS;
        for i in 0..MAX_FUNCS {
            let slot = (home + i) % MAX_FUNCS;
            let key = &self.slots[slot];
            let seen = key.load(Relaxed);
            if seen == func {
                return Some(slot);
            }
            if seen == 0 {
                match key.compare_exchange(0, func, Relaxed, Relaxed) {
                    Ok(_) => return Some(slot),
                    Err(now) if now == func => return Some(slot),
                    Err(_) => {}
                }
            }
        }
        None
    }

    /// The function in `slot` (0: free).
    pub(crate) fn func(&self, slot: usize) -> usize {
        self.slots.get(slot).map_or(0, |k| k.load(Relaxed))
    }
}
