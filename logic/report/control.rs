// SPDX-License-Identifier: GPL-2.0

//! The module's own state: `cpus` (the columns), `probes` (what is registered, and how) and `reset`.

use crate::logic::engine::Engine;
use crate::logic::probes::Probes;
use crate::logic::ratelimit::warn_ratelimited;
use crate::logic::text::{cpu_list, line};
use crate::sys::cpu;
use crate::sys::debugfs::{Node, Shown, Text};
use crate::sys::task::Current;
use core::fmt::Write;
use kernel::prelude::*;
use kernel::sync::Arc;

/// `cpus`: the online CPUs as a CPU list (`0-3`): the columns every table shows.
pub(crate) struct Cpus;

#[vtable]
impl Node for Cpus {
    fn show(&self, out: &mut Text) -> Shown {
        Ok(cpu_list(out, cpu::online())?)
    }
}

/// `probes`: one line per tag: tag, symbol (or tracepoint), `ok` or `failed <errno>`, hits, missed,
/// and the mechanism (`via=kprobe`, `via=kretprobe` or `via=tracepoint`).
pub(crate) struct ProbeList {
    pub(crate) probes: Arc<Probes>,
    pub(crate) engine: Arc<Engine>,
}

#[vtable]
impl Node for ProbeList {
    fn show(&self, out: &mut Text) -> Shown {
        self.engine.read(|window| {
            let snap = window.counters.reading()?;
            for (tag, probe) in self.probes.list() {
                let symbol = probe.symbol().to_str().unwrap_or("?");
                match probe.status() {
                    Ok(()) => write!(out, "{} {} ok", tag.name(), symbol)?,
                    Err(e) => write!(out, "{} {} failed {}", tag.name(), symbol, e.to_errno())?,
                }
                writeln!(
                    out,
                    " hits={} missed={} via={}",
                    snap.hits(tag, self.probes.has_callbacks()),
                    probe.missed(),
                    probe.via()
                )?;
            }
            Ok(())
        })
    }
}

/// `reset`: writing `1` (with or without a newline) zeroes every counter and empties the stack tables;
/// anything else is `-EINVAL` and changes nothing.
pub(crate) struct Reset {
    pub(crate) engine: Arc<Engine>,
}

#[vtable]
impl Node for Reset {
    fn store(&self, input: &[u8], _writer: &Current<'_>) -> Result {
        match line(input) {
            b"1" => {
                self.engine.reset();
                Ok(())
            }
            _ => {
                warn_ratelimited!(
                    "reset: expected \"1\", got {} bytes; nothing changed\n",
                    input.len()
                );
                Err(EINVAL)
            }
        }
    }
}
