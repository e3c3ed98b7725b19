// SPDX-License-Identifier: GPL-2.0
//! `resched stacks TAG`: a stack table (`stacks/<tag>`) in the folded format that FlameGraph and inferno
//! read (`frame;frame;frame count`, outermost first), or drawn as a flame graph by inferno.

use crate::module::Module;
use crate::stat::thousands;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// One distinct stack of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// Innermost first, as the file prints them (`function+0xoff`, `[module]` after module code).
    pub frames: Vec<String>,
    pub count: u64,
}

/// A `stacks/<tag>` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub tag: String,
    pub stacks: Vec<Stack>,
    pub dropped: u64,
}

impl Table {
    /// The hits of every stack in the table (the file's `dropped` not among them).
    pub fn total(&self) -> u64 {
        self.stacks.iter().map(|s| s.count).sum()
    }
}

/// Parses a `stacks/<tag>` file: the header `TAG stacks: N of M entries used, D dropped, ...`, then per
/// stack a blank line, its frames one per line, and `N hits on CPUs LIST`.
pub fn parse(text: &str) -> Result<Table> {
    let mut lines = text.lines();
    let header = lines.next().context("stacks: empty file")?;
    let Some((tag, rest)) = header.split_once(" stacks: ") else {
        bail!("stacks: not a stack table (header {header:?})");
    };
    let dropped = rest
        .split(", ")
        .find_map(|part| part.strip_suffix(" dropped"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("stacks: no dropped count in {header:?}"))?;
    let mut stacks = Vec::new();
    let mut frames = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some((n, _)) = line.split_once(" hits on CPUs ") {
            let count = n
                .parse()
                .with_context(|| format!("stacks: bad count in {line:?}"))?;
            if frames.is_empty() {
                bail!("stacks: a count with no frames ({line:?})");
            }
            stacks.push(Stack {
                frames: std::mem::take(&mut frames),
                count,
            });
        } else {
            frames.push(line.to_string());
        }
    }
    if !frames.is_empty() {
        bail!("stacks: frames with no count at the end");
    }
    Ok(Table {
        tag: tag.to_string(),
        stacks,
        dropped,
    })
}

/// A frame as a flame graph shows it: without its offset (`+0x1f`) unless `offsets`, so that the calls
/// of one function from several places merge, as stackcollapse-bpftrace.pl does.
fn frame(f: &str, offsets: bool) -> String {
    if offsets {
        return f.to_string();
    }
    let (name, module) = match f.split_once(' ') {
        Some((name, module)) => (name, Some(module)),
        None => (f, None),
    };
    let name = match name.rsplit_once("+0x") {
        Some((function, off)) if off.chars().all(|c| c.is_ascii_hexdigit()) => function,
        _ => name,
    };
    match module {
        Some(m) => format!("{name} {m}"),
        None => name.to_string(),
    }
}

/// The folded lines of `table`: outermost frame first, `;` between frames, then the count; stacks that
/// become equal (offsets dropped) are added together. Sorted, as stackcollapse scripts write them.
pub fn folded(table: &Table, offsets: bool) -> Vec<String> {
    let mut merged: BTreeMap<String, u64> = BTreeMap::new();
    for s in &table.stacks {
        let key = s
            .frames
            .iter()
            .rev()
            .map(|f| frame(f, offsets))
            .collect::<Vec<_>>()
            .join(";");
        *merged.entry(key).or_default() += s.count;
    }
    merged
        .into_iter()
        .map(|(stack, n)| format!("{stack} {n}"))
        .collect()
}

/// Draws `lines` (folded) as a flame graph SVG into `out`.
pub fn flamegraph(table: &Table, lines: &[String], out: impl Write) -> Result<()> {
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = format!("{} stacks: {} hits", table.tag, thousands(table.total()));
    opt.subtitle = Some(format!(
        "rust_resched_probe stacks/{}: {} distinct stacks; {} hits not recorded (the table was full)",
        table.tag,
        table.stacks.len(),
        table.dropped
    ));
    opt.count_name = "hits".to_string();
    if lines.is_empty() {
        bail!("stacks/{}: no stack recorded, nothing to draw", table.tag);
    }
    inferno::flamegraph::from_lines(&mut opt, lines.iter().map(String::as_str), out)
        .context("drawing the flame graph")
}

/// `resched stacks TAG [--folded] [--svg FILE] [--offsets]`.
pub fn run(tag: &str, folded_out: bool, svg: Option<&Path>, offsets: bool) -> Result<()> {
    let m = Module::open()?;
    if tag.is_empty() || tag.contains('/') || tag.starts_with('.') {
        bail!("{tag:?} is not a tag (RES, CFS, CFM, RSC, WKL: the files under stacks/)");
    }
    let table = parse(&m.read(&format!("stacks/{tag}"))?)?;
    let lines = folded(&table, offsets);
    if let Some(path) = svg {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        flamegraph(&table, &lines, std::io::BufWriter::new(file))?;
    }
    if folded_out || svg.is_none() {
        let mut stdout = std::io::stdout().lock();
        for l in &lines {
            writeln!(stdout, "{l}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "CFS stacks: 3 of 512 entries used, 4 dropped, recording off

        __smp_call_single_queue+0xf4
        ttwu_queue_wakelist+0xd1
        try_to_wake_up+0x2f7
        entry_SYSCALL_64_after_hwframe+0x4b
    3829 hits on CPUs 0,2-3

        __smp_call_single_queue+0xf4
        ttwu_queue_wakelist+0xd1
        try_to_wake_up+0x301
        entry_SYSCALL_64_after_hwframe+0x4b
    11 hits on CPUs 1

        __smp_call_single_queue+0xf4
        rrp_spin_queue+0x10 [rrp_races]
        ?
    2 hits on CPUs 0
";

    #[test]
    fn parses_the_file() {
        let t = parse(FILE).unwrap();
        assert_eq!(t.tag, "CFS");
        assert_eq!(t.dropped, 4);
        assert_eq!(t.stacks.len(), 3);
        assert_eq!(t.stacks[0].frames[0], "__smp_call_single_queue+0xf4");
        assert_eq!(t.stacks[2].frames[1], "rrp_spin_queue+0x10 [rrp_races]");
        assert_eq!(t.total(), 3842);
    }

    #[test]
    fn folded_is_outermost_first_and_merges_offsets() {
        let t = parse(FILE).unwrap();
        let f = folded(&t, false);
        assert_eq!(
            f,
            vec![
                "?;rrp_spin_queue [rrp_races];__smp_call_single_queue 2",
                "entry_SYSCALL_64_after_hwframe;try_to_wake_up;ttwu_queue_wakelist;\
                 __smp_call_single_queue 3840",
            ]
        );
        let with = folded(&t, true);
        assert_eq!(with.len(), 3);
        let sum: u64 = with
            .iter()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
            .sum();
        assert_eq!(sum, t.total());
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(parse("").is_err());
        assert!(parse("no header\n").is_err());
        assert!(parse("RES stacks: 1 of 2 entries used, x dropped\n").is_err());
        assert!(
            parse("RES stacks: 1 of 2 entries used, 0 dropped\n\n    5 hits on CPUs 0\n").is_err()
        );
        assert!(parse("RES stacks: 1 of 2 entries used, 0 dropped\n\n  f+0x1\n").is_err());
    }

    #[test]
    fn the_flame_graph_holds_the_frames_and_the_total() {
        let t = parse(FILE).unwrap();
        let mut svg = Vec::new();
        flamegraph(&t, &folded(&t, false), &mut svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        // inferno's SVG carries a DOCTYPE, which roxmltree takes only when asked.
        let opt = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        let doc = roxmltree::Document::parse_with_options(&svg, opt).unwrap();
        let titles: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("title"))
            .filter_map(|n| n.text())
            .collect();
        assert!(titles
            .iter()
            .any(|t| t.starts_with("ttwu_queue_wakelist (3,840 hits")));
        assert!(titles.iter().any(|t| t.starts_with("all (3,842 hits")));
        assert!(svg.contains("CFS stacks: 3,842 hits"));
    }
}
