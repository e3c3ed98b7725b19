// SPDX-License-Identifier: GPL-2.0

//! Who preempted the attached tasks that have exited (`preempted_by_exited`): when an attached task
//! exits, its preemptors are folded into the entry of its *root*, the process that attached it (by
//! `attach` from one of its threads, or `attach PID`) and every task created from then on; so that once
//! a command has exited, `resched stat -- CMD` can still say who took its CPU.
//!
//! A table of [`ROOTS`] entries under a raw spinlock, taken when an attached task exits (never at a
//! context switch) and by a reader copying the table. When every entry is in use, the one least
//! recently folded into makes room (counted, shown). A root's entry is forgotten when its main thread
//! attaches again (a new command, perhaps under a reused pid).

use crate::logic::tracker::PREEMPTORS;
use crate::sys::rawlock::RawSpinLock;
use crate::sys::task::COMM_LEN;
use kernel::prelude::*;

/// Roots kept at once.
pub(crate) const ROOTS: usize = 32;

/// A preemptor: (pid, comm, count); pid 0 marks an unused one.
pub(crate) type Preemptor = (i32, [u8; COMM_LEN], u64);

/// What the exited tasks of one root were preempted by.
#[derive(Clone, Copy)]
pub(crate) struct Root {
    /// The root's pid (its thread group id); 0: unused entry.
    pub(crate) root: i32,
    /// The name of its main thread when that exited, else of the first of its tasks to exit.
    pub(crate) comm: [u8; COMM_LEN],
    /// Exited tasks folded in.
    pub(crate) tasks: u64,
    /// Most frequent first once sorted by the reader.
    pub(crate) by: [Preemptor; PREEMPTORS],
    /// Preemptions by tasks that found no room in `by`.
    pub(crate) others: u64,
    /// When it was last folded into (the table's fold count then).
    stamp: u64,
}

impl Root {
    const UNUSED: Self = Self {
        root: 0,
        comm: [0; COMM_LEN],
        tasks: 0,
        by: [(0, [0; COMM_LEN], 0); PREEMPTORS],
        others: 0,
        stamp: 0,
    };

    /// Adds `count` preemptions by `pid`: to its entry, else a free one; else, if it outnumbers the
    /// smallest entry, it takes that entry's place and the smallest goes to `others`.
    fn add(&mut self, (pid, comm, count): Preemptor) {
        if let Some(e) = self.by.iter_mut().find(|e| e.0 == pid) {
            e.2 = e.2.wrapping_add(count);
        } else if let Some(e) = self.by.iter_mut().find(|e| e.0 == 0) {
            *e = (pid, comm, count);
        } else if let Some(min) = self.by.iter_mut().min_by_key(|e| e.2) {
            if min.2 < count {
                self.others = self.others.wrapping_add(min.2);
                *min = (pid, comm, count);
            } else {
                self.others = self.others.wrapping_add(count);
            }
        }
    }
}

struct Table {
    roots: KVec<Root>,
    /// Folds so far (the entries' clock).
    folds: u64,
    /// Entries that made room for another root.
    replaced: u64,
}

/// The exited tasks' preemptors, per root.
pub(crate) struct Exited {
    table: RawSpinLock<Table>,
}

impl Exited {
    /// An empty table. Allocates: process context (at load).
    pub(crate) fn new() -> Result<Self> {
        let mut roots = KVec::with_capacity(ROOTS, GFP_KERNEL)?;
        for _ in 0..ROOTS {
            roots.push(Root::UNUSED, GFP_KERNEL)?;
        }
        Ok(Self {
            table: RawSpinLock::new(Table {
                roots,
                folds: 0,
                replaced: 0,
            })?,
        })
    }

    /// Folds an exiting task of `root` (thread `tid`, named `comm`) into its root's entry: its
    /// preemptors `by` (pid 0: none) and `others`. No allocation; may run in a tracepoint probe.
    pub(crate) fn fold(
        &self,
        root: i32,
        tid: i32,
        comm: [u8; COMM_LEN],
        by: &[Preemptor],
        others: u64,
    ) {
        self.table.with(|t| {
            t.folds = t.folds.wrapping_add(1);
            let at = match t.roots.iter().position(|r| r.root == root) {
                Some(at) => at,
                None => {
                    let free = t.roots.iter().position(|r| r.root == 0);
                    let at = free.unwrap_or_else(|| {
                        t.replaced = t.replaced.wrapping_add(1);
                        (0..t.roots.len())
                            .min_by_key(|&i| t.roots.get(i).map_or(0, |r| r.stamp))
                            .unwrap_or(0)
                    });
                    if let Some(r) = t.roots.get_mut(at) {
                        *r = Root {
                            root,
                            ..Root::UNUSED
                        };
                    }
                    at
                }
            };
            let Some(r) = t.roots.get_mut(at) else {
                return;
            };
            r.stamp = t.folds;
            r.tasks = r.tasks.wrapping_add(1);
            if tid == root || r.tasks == 1 {
                r.comm = comm;
            }
            for &p in by.iter().filter(|p| p.0 != 0) {
                r.add(p);
            }
            r.others = r.others.wrapping_add(others);
        });
    }

    /// Forgets `root`'s entry, if it has one: its main thread attached again.
    pub(crate) fn forget(&self, root: i32) {
        self.table.with(|t| {
            if let Some(r) = t.roots.iter_mut().find(|r| r.root == root) {
                *r = Root::UNUSED;
            }
        });
    }

    /// Every entry, those in use (`root` not 0) most recently folded into first, each with its
    /// preemptors most frequent first; and how many entries made room for another root. Nothing is
    /// allocated under the lock (not even `GFP_ATOMIC`: on PREEMPT_RT not under a raw spinlock).
    pub(crate) fn read(&self) -> Result<(KVec<Root>, u64)> {
        let mut out = KVec::with_capacity(ROOTS, GFP_KERNEL)?;
        for _ in 0..ROOTS {
            out.push(Root::UNUSED, GFP_KERNEL)?;
        }
        let replaced = self.table.with(|t| {
            for (o, r) in out.iter_mut().zip(t.roots.iter()) {
                *o = *r;
            }
            t.replaced
        });
        out.sort_unstable_by_key(|r| core::cmp::Reverse(r.stamp));
        for r in out.iter_mut() {
            r.by.sort_unstable_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        }
        Ok((out, replaced))
    }
}
