// SPDX-License-Identifier: GPL-2.0

//! Stack attribution: for each probe kind, a table fixed at load time of the distinct kernel stacks seen
//! at its hits, with how often and on which CPUs each was seen.
//!
//! Handlers add to a table without locks: a hit hashes its stack to a home slot and looks at no more than
//! [`MAX_PROBES`] slots from there. It counts on the slot holding its stack, or claims a free one (one
//! compare-and-swap), fills it and publishes it by storing the key; if neither is found the hit counts as
//! `dropped`. Two CPUs claiming slots for the same new stack at the same moment make two entries, which
//! readers merge.

use crate::logic::counters::Tag;
use crate::sys::cpu;
use crate::sys::stacktrace::{Stack, MAX_FRAMES};
use core::sync::atomic::{
    AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use kernel::prelude::*;

/// Entries allocated per table at load time: the most `stacks_capacity` accepts, and its default.
pub(crate) const MAX_ENTRIES: usize = 512;

/// Slots a hit looks at, from its stack's home slot on, before it counts as dropped.
const MAX_PROBES: usize = 32;

/// Key of a free slot.
const EMPTY: u64 = 0;

/// Key of a slot being filled.
const CLAIMED: u64 = u64::MAX;

/// The key of `stack`: a hash of its frames that is never [`EMPTY`] or [`CLAIMED`].
fn key(stack: &Stack) -> u64 {
    let mut h: u64 = 0;
    for &frame in &stack.frames {
        h = (h.rotate_left(5) ^ frame as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    h ^= h >> 32;
    match h {
        EMPTY | CLAIMED => 1,
        h => h,
    }
}

/// A vector of `n` zeroed atomics.
fn zeroed<T: Default>(n: usize) -> Result<KVVec<T>> {
    let mut v = KVVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        v.push(T::default(), GFP_KERNEL)?;
    }
    Ok(v)
}

/// The stacks of one probe kind: [`MAX_ENTRIES`] slots of key, count, frames and CPU bitmap.
struct Table {
    keys: KVVec<AtomicU64>,
    counts: KVVec<AtomicU64>,
    /// `MAX_FRAMES` per slot.
    frames: KVVec<AtomicUsize>,
    /// `words` per slot: bit `c` of the slot's bitmap is set once CPU `c` counted on it.
    cpus: KVVec<AtomicU64>,
    words: usize,
    dropped: AtomicU64,
}

impl Table {
    fn new(words: usize) -> Result<Self> {
        Ok(Self {
            keys: zeroed(MAX_ENTRIES)?,
            counts: zeroed(MAX_ENTRIES)?,
            frames: zeroed(MAX_ENTRIES * MAX_FRAMES)?,
            cpus: zeroed(MAX_ENTRIES * words)?,
            words,
            dropped: AtomicU64::new(0),
        })
    }

    /// Bytes one table takes.
    fn bytes(words: usize) -> usize {
        MAX_ENTRIES * 8 * (2 + MAX_FRAMES + words)
    }

    /// Counts one hit of `stack` on CPU `cpu`, using the first `capacity` slots. No allocation, no
    /// lock, at most [`MAX_PROBES`] slots looked at.
    fn record(&self, stack: &Stack, cpu: usize, capacity: usize) {
        // No stack could be taken (this CPU was already taking one): the hit counts as dropped.
        if stack.is_empty() {
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        let capacity = capacity.clamp(1, MAX_ENTRIES);
        let key = key(stack);
        let home = (key % capacity as u64) as usize;
        for i in 0..MAX_PROBES.min(capacity) {
            let slot = (home + i) % capacity;
            let Some(k) = self.keys.get(slot) else {
                break;
            };
            let mut seen = k.load(Acquire);
            if seen == EMPTY {
                match k.compare_exchange(EMPTY, CLAIMED, Acquire, Relaxed) {
                    Ok(_) => {
                        self.fill(slot, stack, cpu);
                        k.store(key, Release);
                        return;
                    }
                    Err(now) => seen = now,
                }
            }
            if seen == key && self.holds(slot, stack) {
                self.count(slot, cpu);
                return;
            }
        }
        self.dropped.fetch_add(1, Relaxed);
    }

    /// The frames of `slot`.
    fn slot_frames(&self, slot: usize) -> &[AtomicUsize] {
        self.frames
            .get(slot * MAX_FRAMES..(slot + 1) * MAX_FRAMES)
            .unwrap_or(&[])
    }

    /// The CPU bitmap of `slot`.
    fn slot_cpus(&self, slot: usize) -> &[AtomicU64] {
        self.cpus
            .get(slot * self.words..(slot + 1) * self.words)
            .unwrap_or(&[])
    }

    /// Fills a slot just claimed: `stack`, seen once, on `cpu`.
    fn fill(&self, slot: usize, stack: &Stack, cpu: usize) {
        for (f, &frame) in self.slot_frames(slot).iter().zip(stack.frames.iter()) {
            f.store(frame, Relaxed);
        }
        if let Some(c) = self.counts.get(slot) {
            c.store(1, Relaxed);
        }
        for (w, word) in self.slot_cpus(slot).iter().enumerate() {
            word.store(if w == cpu / 64 { 1 << (cpu % 64) } else { 0 }, Relaxed);
        }
    }

    /// Whether published `slot` holds `stack`.
    fn holds(&self, slot: usize, stack: &Stack) -> bool {
        let frames = self.slot_frames(slot);
        frames.len() == MAX_FRAMES
            && frames
                .iter()
                .zip(stack.frames.iter())
                .all(|(f, &frame)| f.load(Relaxed) == frame)
    }

    /// Counts one more hit on published `slot`, from `cpu`.
    fn count(&self, slot: usize, cpu: usize) {
        if let Some(c) = self.counts.get(slot) {
            c.fetch_add(1, Relaxed);
        }
        if let Some(word) = self.slot_cpus(slot).get(cpu / 64) {
            word.fetch_or(1 << (cpu % 64), Relaxed);
        }
    }

    /// Frees every slot and zeroes `dropped`. Only for a table no handler records into any more.
    fn clear(&self) {
        for (slot, k) in self.keys.iter().enumerate() {
            k.store(EMPTY, Relaxed);
            if let Some(c) = self.counts.get(slot) {
                c.store(0, Relaxed);
            }
            for word in self.slot_cpus(slot) {
                word.store(0, Relaxed);
            }
        }
        self.dropped.store(0, Relaxed);
    }

    /// A copy of the published slots, duplicates merged, most counted first.
    fn seen(&self, capacity: usize) -> Result<Seen> {
        let mut entries = KVec::new();
        let mut cpus = KVec::new();
        let mut used = 0;
        for (slot, k) in self.keys.iter().enumerate() {
            let key = k.load(Acquire);
            if key == EMPTY || key == CLAIMED {
                continue;
            }
            let mut stack = Stack {
                frames: [0; MAX_FRAMES],
            };
            for (frame, f) in stack.frames.iter_mut().zip(self.slot_frames(slot)) {
                *frame = f.load(Relaxed);
            }
            let count = self.counts.get(slot).map_or(0, |c| c.load(Relaxed));
            // Freed (and perhaps refilled) while being copied: leave it out.
            if k.load(Acquire) != key {
                continue;
            }
            used += 1;
            let first = cpus.len();
            for word in self.slot_cpus(slot) {
                cpus.push(word.load(Relaxed), GFP_KERNEL)?;
            }
            entries.push(
                Entry {
                    stack,
                    count,
                    cpus: first,
                },
                GFP_KERNEL,
            )?;
        }
        // Merge the entries of one stack (claimed by two CPUs at once): rare, and at most
        // `MAX_ENTRIES` entries, so pairwise.
        let mut merged: KVec<Entry> = KVec::with_capacity(entries.len(), GFP_KERNEL)?;
        for e in entries.iter() {
            match merged.iter_mut().find(|m| m.stack == e.stack) {
                Some(m) => {
                    m.count += e.count;
                    for w in 0..self.words {
                        let add = cpus.get(e.cpus + w).copied().unwrap_or(0);
                        if let Some(word) = cpus.get_mut(m.cpus + w) {
                            *word |= add;
                        }
                    }
                }
                None => merged.push(
                    Entry {
                        stack: e.stack,
                        count: e.count,
                        cpus: e.cpus,
                    },
                    GFP_KERNEL,
                )?,
            }
        }
        most_counted_first(&mut merged);
        Ok(Seen {
            used,
            capacity,
            dropped: self.dropped.load(Relaxed),
            entries: merged,
            cpus,
            words: self.words,
        })
    }
}

/// Sorts `entries` by count, most first (ties keep their order): an insertion sort, as the core sorts
/// reach a panic path (`panic_on_ord_violation`) that this kernel's objtool does not know as noreturn.
fn most_counted_first(entries: &mut [Entry]) {
    for i in 1..entries.len() {
        let mut j = i;
        while j > 0 && entries[j - 1].count < entries[j].count {
            entries.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// One distinct stack and how often it was seen.
pub(crate) struct Entry {
    pub(crate) stack: Stack,
    pub(crate) count: u64,
    /// Index of its first bitmap word in [`Seen::cpus`].
    cpus: usize,
}

/// A copy of one table: entries used, capacity, dropped hits and the stacks, most counted first.
pub(crate) struct Seen {
    pub(crate) used: usize,
    pub(crate) capacity: usize,
    pub(crate) dropped: u64,
    pub(crate) entries: KVec<Entry>,
    cpus: KVec<u64>,
    words: usize,
}

impl Seen {
    /// The CPUs `entry` was seen on, increasing.
    pub(crate) fn cpus<'a>(&'a self, entry: &'a Entry) -> impl Iterator<Item = usize> + 'a {
        (0..self.words * 64).filter(move |&c| {
            self.cpus
                .get(entry.cpus + c / 64)
                .is_some_and(|w| w & (1 << (c % 64)) != 0)
        })
    }
}

/// One window's stack tables, one per probe kind. Whether hits record stacks and how many entries a
/// table may use are settings of the [`crate::logic::engine::Engine`].
pub(crate) struct Stacks {
    /// One per tag, in [`Tag::ALL`] order.
    tables: KVec<Table>,
}

impl Stacks {
    /// Allocates every table (all the memory stack attribution will use).
    pub(crate) fn new() -> Result<Self> {
        let words = cpu::nr_cpu_ids().div_ceil(64);
        let mut tables = KVec::with_capacity(Tag::ALL.len(), GFP_KERNEL)?;
        for _ in Tag::ALL {
            tables.push(Table::new(words)?, GFP_KERNEL)?;
        }
        Ok(Self { tables })
    }

    /// Bytes the tables of one window take for `cpus` CPU ids (fixed at load).
    pub(crate) fn bytes(cpus: usize) -> usize {
        Tag::ALL.len() * Table::bytes(cpus.div_ceil(64))
    }

    /// Counts one hit of `tag` with stack `stack` on this CPU, using `capacity` entries per table.
    pub(crate) fn record(&self, tag: Tag, stack: &Stack, capacity: usize) {
        if let Some(table) = self.tables.get(tag.index()) {
            table.record(stack, cpu::this_cpu(), capacity);
        }
    }

    /// Empties every table and zeroes the dropped counts. Only for tables no handler records into.
    pub(crate) fn clear(&self) {
        for table in self.tables.iter() {
            table.clear();
        }
    }

    /// A copy of `tag`'s table, of which `capacity` entries may be used.
    pub(crate) fn seen(&self, tag: Tag, capacity: usize) -> Result<Seen> {
        self.tables.get(tag.index()).ok_or(EINVAL)?.seen(capacity)
    }
}
