// SPDX-License-Identifier: GPL-2.0

//! The per-CPU slots of device interrupts, queued functions and kernel threads: claimed at a key's
//! first sight on a CPU (only that CPU writes them, with interrupts off), kept across resets, and read
//! from other CPUs by the files ([`Keys`]).

use super::state::*;
use super::{FUNC_SLOTS, IRQ_SLOTS, NAME_BYTES, NAME_WORDS, TASK_SLOTS};
use crate::sys::percpu::BlockView;
use crate::sys::task::{Task, TaskExt, COMM_LEN};
use crate::sys::tracepoint::{counted_action, IrqAction};
use core::sync::atomic::{fence, Ordering::Acquire, Ordering::Release};

impl Noise {
    /// The slot of device interrupt `irq` on this CPU ([`IRQ_SLOTS`] when every slot is another
    /// interrupt's), claimed (and its name kept) at its first sight here, and whether `action` is
    /// its first handler; `None` for an interrupt not followed (hidden). Interrupts off: no other
    /// writer.
    #[inline]
    pub(super) fn irq_slot(&self, irq: u32, action: &IrqAction<'_>) -> Option<(usize, bool)> {
        let key = u64::from(irq) + 1;
        let home = irq as usize % IRQ_SLOTS;
        for i in 0..IRQ_SLOTS {
            let slot = (home + i) % IRQ_SLOTS;
            match self.state.read(IRQ_KEYS + slot) {
                k if k == key => {
                    let first = self.state.read(IRQ_FIRST + slot) == action.addr() as u64
                        || self.first_changed(slot, irq, action);
                    return Some((slot, first));
                }
                k if k == key | HIDDEN => return None,
                0 => return self.claim_irq(slot, irq, action),
                _ => {}
            }
        }
        let (counted, hidden) = counted_action(irq, action);
        (!hidden).then_some((IRQ_SLOTS, counted == action.addr()))
    }

    /// Whether `action`'s runs count as `irq`'s interruptions, looked up (a shared line's second
    /// handler, or a line whose handlers changed), the answer kept for `slot`.
    #[cold]
    fn first_changed(&self, slot: usize, irq: u32, action: &IrqAction<'_>) -> bool {
        let (counted, _) = counted_action(irq, action);
        self.state.write(IRQ_FIRST + slot, counted as u64);
        counted == action.addr()
    }

    /// Claims `slot` for `irq`: marks it hidden, or keeps its first handler and `action`'s name (cut
    /// to fit) before publishing the key.
    #[cold]
    fn claim_irq(&self, slot: usize, irq: u32, action: &IrqAction<'_>) -> Option<(usize, bool)> {
        let key = u64::from(irq) + 1;
        let (first, hidden) = counted_action(irq, action);
        if hidden {
            self.state.write(IRQ_KEYS + slot, key | HIDDEN);
            return None;
        }
        let name = action.name();
        let mut bytes = [0u8; NAME_BYTES];
        let n = name.len().min(NAME_BYTES - 1);
        bytes[..n].copy_from_slice(&name[..n]);
        for (w, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let at = IRQ_NAMES + slot * NAME_WORDS + w;
            self.state.write(at, u64::from_ne_bytes(word));
        }
        self.state.write(IRQ_FIRST + slot, first as u64);
        // Readers on other CPUs read the key, then the name (`Keys::irq`).
        fence(Release);
        self.state.write(IRQ_KEYS + slot, key);
        Some((slot, first == action.addr()))
    }

    /// The slot of `func` on this CPU, claimed at its first sight here; [`FUNC_SLOTS`] when every slot
    /// is another function's. Interrupts off: no other writer.
    #[inline]
    pub(super) fn func_slot(&self, func: usize) -> usize {
        let key = func as u64;
        let home = ((key >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize % FUNC_SLOTS;
        for i in 0..FUNC_SLOTS {
            let slot = (home + i) % FUNC_SLOTS;
            match self.state.read(FUNC_KEYS + slot) {
                k if k == key => return slot,
                0 => {
                    self.state.write(FUNC_KEYS + slot, key);
                    return slot;
                }
                _ => {}
            }
        }
        FUNC_SLOTS
    }

    /// The slot of kernel thread `task`'s name on this CPU, claimed at the name's first turn here;
    /// [`TASK_SLOTS`] when every slot is another name's. Interrupts off: no other writer.
    pub(super) fn task_slot(&self, task: &Task) -> usize {
        let name = task.comm_words();
        let home = (name[0] ^ name[1]).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 61;
        for i in 0..TASK_SLOTS {
            let slot = (home as usize + i) % TASK_SLOTS;
            let at = TASK_NAMES + slot * TASK_NAME_WORDS;
            match self.state.read(at) {
                0 if name[0] != 0 => {
                    // Readers on other CPUs read the first word, then the second (`Keys::task`).
                    self.state.write(at + 1, name[1]);
                    fence(Release);
                    self.state.write(at, name[0]);
                    return slot;
                }
                w if w == name[0] && self.state.read(at + 1) == name[1] => return slot,
                _ => {}
            }
        }
        TASK_SLOTS
    }

    /// CPU `cpu`'s slot keys, read in place.
    pub(crate) fn keys(&self, cpu: usize) -> Keys<'_> {
        Keys(self.state.cpu_view(cpu))
    }
}

/// One CPU's slot keys.
pub(crate) struct Keys<'a>(BlockView<'a, STATE>);

impl Keys<'_> {
    /// The device interrupt of `slot` (`None`: free, or the `other` slot).
    pub(crate) fn irq(&self, slot: usize) -> Option<u32> {
        if slot >= IRQ_SLOTS {
            return None;
        }
        let key = self.0.get(IRQ_KEYS + slot);
        // The name was written before the key (`Noise::claim_irq`).
        fence(Acquire);
        match key {
            0 => None,
            k if k & HIDDEN != 0 => None,
            k => Some((k - 1) as u32),
        }
    }

    /// The name kept for the device interrupt of `slot`.
    pub(crate) fn irq_name(&self, slot: usize) -> [u8; NAME_BYTES] {
        let mut bytes = [0u8; NAME_BYTES];
        if slot < IRQ_SLOTS {
            for (w, chunk) in bytes.chunks_exact_mut(8).enumerate() {
                let word = self.0.get(IRQ_NAMES + slot * NAME_WORDS + w);
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
        }
        bytes
    }

    /// The name of the kernel threads of `slot` (`None`: free, or the `other` slot).
    pub(crate) fn task(&self, slot: usize) -> Option<[u8; COMM_LEN]> {
        if slot >= TASK_SLOTS {
            return None;
        }
        let at = TASK_NAMES + slot * TASK_NAME_WORDS;
        let first = self.0.get(at);
        // The second word was written before the first (`Noise::task_slot`).
        fence(Acquire);
        if first == 0 {
            return None;
        }
        let mut name = [0u8; COMM_LEN];
        name[..8].copy_from_slice(&first.to_ne_bytes());
        name[8..].copy_from_slice(&self.0.get(at + 1).to_ne_bytes());
        Some(name)
    }

    /// The function of `slot` (0: free, or the `other` slot).
    pub(crate) fn func(&self, slot: usize) -> usize {
        if slot >= FUNC_SLOTS {
            return 0;
        }
        self.0.get(FUNC_KEYS + slot) as usize
    }
}
