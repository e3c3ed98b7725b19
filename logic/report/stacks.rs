// SPDX-License-Identifier: GPL-2.0

//! Who sends: `stacks/<tag>` (each distinct stack of a tag's hits, most counted first), and the two
//! settings `stacks_enable` and `stacks_capacity`.

use crate::logic::counters::Tag;
use crate::logic::engine::Engine;
use crate::logic::ratelimit::warn_ratelimited;
use crate::logic::stacks::MAX_ENTRIES;
use crate::logic::text::{cpu_list, line, parse_count};
use crate::sys::debugfs::{Dir, File, Node, Shown, Text};
use crate::sys::stacktrace::{self, Symbolizer};
use crate::sys::task::Current;
use core::fmt::Write;
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;

/// `stacks_enable`: `1` while hits record their stacks, `0` (the default) while not; writing `1` or `0`
/// turns recording on or off (the tables keep what they hold); anything else is `-EINVAL`.
pub(crate) struct StacksEnable(pub(crate) Arc<Engine>);

#[vtable]
impl Node for StacksEnable {
    fn show(&self, out: &mut Text) -> Shown {
        Ok(writeln!(out, "{}", u8::from(self.0.stacks_enabled()))?)
    }

    fn store(&self, input: &[u8], _writer: &Current<'_>) -> Result {
        match line(input) {
            b"1" if !stacktrace::SUPPORTED => {
                warn_ratelimited!(
                    "stacks_enable: stack recording needs the x86-64 unwinder; not on this architecture\n"
                );
                return Err(stacktrace::unsupported());
            }
            b"1" => self.0.set_stacks_enabled(true),
            b"0" => self.0.set_stacks_enabled(false),
            _ => {
                warn_ratelimited!(
                    "stacks_enable: expected \"0\" or \"1\", got {} bytes; nothing changed\n",
                    input.len()
                );
                return Err(EINVAL);
            }
        }
        Ok(())
    }
}

/// `stacks_capacity`: the entries each stack table may use. Writing a number from 1 to the entries
/// allocated at load sets it and empties the tables; refused (`-EBUSY`) while recording is on; anything
/// else is `-EINVAL`.
pub(crate) struct StacksCapacity(pub(crate) Arc<Engine>);

#[vtable]
impl Node for StacksCapacity {
    fn show(&self, out: &mut Text) -> Shown {
        Ok(writeln!(out, "{}", self.0.capacity())?)
    }

    fn store(&self, input: &[u8], _writer: &Current<'_>) -> Result {
        let r = parse_count(line(input))
            .ok_or(EINVAL)
            .and_then(|n| self.0.set_capacity(n));
        if let Err(e) = r {
            warn_ratelimited!(
                "stacks_capacity: expected a number from 1 to {} while stacks_enable is 0, got {} bytes: error {}; nothing changed\n",
                MAX_ENTRIES,
                input.len(),
                e.to_errno()
            );
        }
        r
    }
}

/// `stacks/<tag>`: a header (entries used, capacity, dropped hits), then each distinct stack, most
/// counted first: its frames innermost first, as bpftrace prints `kstack`, then its count and CPUs.
pub(crate) struct StackFile {
    pub(crate) engine: Arc<Engine>,
    pub(crate) tag: Tag,
}

#[vtable]
impl Node for StackFile {
    fn show(&self, out: &mut Text) -> Shown {
        let seen = self
            .engine
            .read(|window| window.stacks.seen(self.tag, self.engine.capacity()))?;
        let mut symbols = Symbolizer::new()?;
        writeln!(
            out,
            "{} stacks: {} of {} entries used, {} dropped, recording {}",
            self.tag.name(),
            seen.used,
            seen.capacity,
            seen.dropped,
            if self.engine.stacks_enabled() {
                "on"
            } else {
                "off"
            }
        )?;
        for entry in seen.entries.iter() {
            writeln!(out)?;
            let machinery = symbols.tracepoint_frames(&entry.stack);
            for frame in entry.stack.frames().skip(machinery) {
                out.write_str("        ")?;
                symbols.write(out, frame)?;
                writeln!(out)?;
            }
            write!(out, "    {} hits on CPUs ", entry.count)?;
            cpu_list(out, seen.cpus(entry))?;
        }
        Ok(())
    }
}

/// `stacks/<tag>` for each tag of [`Tag::ALL`]; the files go before their directory.
pub(super) struct StackFiles {
    _files: KVec<File<StackFile>>,
    _dir: Dir,
}

impl StackFiles {
    pub(super) fn new(parent: &Dir, engine: &Arc<Engine>) -> Result<Self> {
        let dir = parent.subdir(c_str!("stacks"))?;
        let mut files = KVec::with_capacity(Tag::ALL.len(), GFP_KERNEL)?;
        for tag in Tag::ALL {
            let node = StackFile {
                engine: engine.clone(),
                tag,
            };
            files.push(File::new(&dir, tag.c_name(), node)?, GFP_KERNEL)?;
        }
        Ok(Self {
            _files: files,
            _dir: dir,
        })
    }
}
