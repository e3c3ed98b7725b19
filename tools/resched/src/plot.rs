// SPDX-License-Identifier: GPL-2.0
//! `resched plot`: the tables as pictures (SVG, drawn with plotters): the sender x target heat map of
//! `matrix`, the busiest pairs of `pairs` as bars, and the histograms of a `latency/` file. Each picture
//! says its totals in its caption, equal to the file's.

use crate::module::Module;
use crate::parse::{self, Cells, Histogram, Pair};
use crate::stat::thousands;
use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum What {
    /// Who interrupts whom: `matrix` as a heat map per kind (RES, CAL), sender rows, target columns.
    Matrix {
        /// The SVG file to write.
        #[arg(long, value_name = "FILE")]
        svg: PathBuf,
    },
    /// The busiest (sender, target, kind) pairs of `pairs`, as bars.
    Pairs {
        /// The SVG file to write.
        #[arg(long, value_name = "FILE")]
        svg: PathBuf,
        /// How many pairs.
        #[arg(short = 'n', long, default_value_t = 20)]
        top: usize,
    },
    /// The histograms of latency/NAME (resched, ipi, wakeup, slices), one panel each.
    Latency {
        /// The file under latency/.
        name: String,
        /// The SVG file to write.
        #[arg(long, value_name = "FILE")]
        svg: PathBuf,
    },
}

pub fn run(what: What) -> Result<()> {
    let m = Module::open()?;
    match what {
        What::Matrix { svg } => matrix(&parse::matrix(&m.read("matrix")?)?, &svg),
        What::Pairs { svg, top } => pairs(&parse::pairs(&m.read("pairs")?)?, top, &svg),
        What::Latency { name, svg } => {
            if !["resched", "ipi", "wakeup", "slices"].contains(&name.as_str()) {
                bail!("{name:?} is not a latency file (resched, ipi, wakeup, slices)");
            }
            let text = m.read(&format!("latency/{name}"))?;
            latency(&name, &parse::histograms(&text)?, &svg)
        }
    }
}

/// plotters' errors carry the backend's type; one line is enough here.
fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing: {e:?}")
}

/// `n` segments, `0` to `n - 1`, each value's label at its centre (plotters' integer ranges include their
/// end).
fn segments(
    n: u32,
) -> plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordu32> {
    (0..n.max(1) - 1).into_segmented()
}

/// White for nothing, then from pale yellow to dark red on a log scale of `v` against `max`.
fn heat(v: u64, max: u64) -> RGBColor {
    if v == 0 || max == 0 {
        return WHITE;
    }
    let t = ((v as f64).ln_1p() / (max as f64).ln_1p()).clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(255.0, 140.0), lerp(240.0, 10.0), lerp(170.0, 10.0))
}

/// The CPUs of a block, in order.
fn cpus(cells: &Cells) -> Vec<u32> {
    let mut v: Vec<u32> = cells.keys().flat_map(|&(s, t)| [s, t]).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// One heat map into `area`.
fn heat_map(area: &DrawingArea<SVGBackend, Shift>, kind: &str, cells: &Cells) -> Result<()> {
    let cpus = cpus(cells);
    let n = cpus.len() as u32;
    let total: u64 = cells.values().sum();
    let max = cells.values().copied().max().unwrap_or(0);
    let what = if kind == "RES" {
        "reschedule IPIs"
    } else {
        "function call IPIs"
    };
    let caption = format!("{kind}: {} {what}", thousands(total));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(segments(n), segments(n))
        .map_err(err)?;
    let label = |i: u32| {
        cpus.get(i as usize)
            .map(|c| format!("CPU{c}"))
            .unwrap_or_default()
    };
    // Sender rows from the top: row i is drawn at y = n - 1 - i.
    let x_label = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) => label(*i),
        _ => String::new(),
    };
    let y_label = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) if *i < n => label(n - 1 - *i),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("target CPU")
        .y_desc("sending CPU")
        .x_labels(n.min(32) as usize)
        .y_labels(n.min(32) as usize)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .draw()
        .map_err(err)?;
    let at = |c: u32| cpus.iter().position(|&x| x == c).unwrap_or(0) as u32;
    chart
        .draw_series(cells.iter().map(|(&(s, t), &v)| {
            let (x, y) = (at(t), n - 1 - at(s));
            Rectangle::new(
                [
                    (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                ],
                heat(v, max).filled(),
            )
        }))
        .map_err(err)?;
    if n <= 16 {
        chart
            .draw_series(cells.iter().filter(|(_, &v)| v > 0).map(|(&(s, t), &v)| {
                let (x, y) = (at(t), n - 1 - at(s));
                // Centred in the cell, white on the darker half of the scale.
                let ink = if heat(v, max).1 < 120 { WHITE } else { BLACK };
                Text::new(
                    v.to_string(),
                    (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                    ("sans-serif", 13)
                        .into_font()
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )
            }))
            .map_err(err)?;
    }
    Ok(())
}

/// `matrix` as one heat map per block, side by side.
pub fn matrix(blocks: &std::collections::BTreeMap<String, Cells>, path: &Path) -> Result<()> {
    let n = cpus(blocks.values().next().unwrap_or(&Cells::new())).len() as u32;
    let side = (60 + 40 * n).clamp(360, 1400);
    let root = SVGBackend::new(path, (side * blocks.len() as u32, side + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((1, blocks.len().max(1)));
    // RES first, as the file has them.
    let mut order: Vec<(&String, &Cells)> = blocks.iter().collect();
    order.sort_by_key(|(k, _)| (k.as_str() != "RES", k.to_string()));
    for ((kind, cells), area) in order.into_iter().zip(panels.iter()) {
        heat_map(area, kind, cells)?;
    }
    root.present().map_err(err)
}

/// The `top` most counted pairs as horizontal bars.
pub fn pairs(all: &[Pair], top: usize, path: &Path) -> Result<()> {
    if all.is_empty() {
        bail!("pairs: nothing counted yet, nothing to draw");
    }
    let mut shown: Vec<&Pair> = all.iter().collect();
    shown.sort_by_key(|p| std::cmp::Reverse(p.count));
    shown.truncate(top.max(1));
    let n = shown.len() as u32;
    let max = shown[0].count;
    let sum: u64 = shown.iter().map(|p| p.count).sum();
    let root = SVGBackend::new(path, (900, 120 + 26 * n)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let caption = format!(
        "the {n} busiest of {} pairs: {} of {} counted",
        all.len(),
        thousands(sum),
        thousands(all.iter().map(|p| p.count).sum())
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(170)
        .build_cartesian_2d(0..max + max / 8 + 1, segments(n))
        .map_err(err)?;
    let label = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) if *i < n => shown
            .get((n - 1 - *i) as usize)
            .map(|p| format!("{} CPU{} -> CPU{}", p.kind, p.sender, p.target))
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n as usize)
        .y_label_formatter(&label)
        .x_desc("count")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(shown.iter().enumerate().map(|(rank, p)| {
            let y = n - 1 - rank as u32;
            let mut bar = Rectangle::new(
                [
                    (0, SegmentValue::Exact(y)),
                    (p.count, SegmentValue::Exact(y + 1)),
                ],
                kind_color(&p.kind).filled(),
            );
            bar.set_margin(3, 3, 0, 0);
            bar
        }))
        .map_err(err)?;
    chart
        .draw_series(shown.iter().enumerate().map(|(rank, p)| {
            let y = n - 1 - rank as u32;
            Text::new(
                format!(" {}", p.count),
                (p.count, SegmentValue::CenterOf(y)),
                ("sans-serif", 12).into_font(),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)
}

/// One colour per kind, the same in every picture.
fn kind_color(kind: &str) -> RGBColor {
    match kind {
        "RES" => RGBColor(200, 60, 40),
        "CFS" => RGBColor(40, 110, 190),
        "CFM" => RGBColor(110, 70, 170),
        "RSC" => RGBColor(230, 150, 30),
        "WKL" => RGBColor(50, 150, 80),
        _ => RGBColor(120, 120, 120),
    }
}

/// A bucket's lower bound as the module prints it (`4K`, `1M`).
fn bucket(lo: u64) -> String {
    match lo {
        0..1024 => lo.to_string(),
        1024..1_048_576 => format!("{}K", lo >> 10),
        1_048_576..1_073_741_824 => format!("{}M", lo >> 20),
        _ => format!("{}G", lo >> 30),
    }
}

/// Each histogram of a latency file as a bar chart over its log2 buckets, one panel each.
pub fn latency(
    name: &str,
    hists: &std::collections::BTreeMap<String, Histogram>,
    path: &Path,
) -> Result<()> {
    if hists.is_empty() {
        bail!("latency/{name}: no histogram");
    }
    let root = SVGBackend::new(path, (900, 300 * hists.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    for ((hname, h), area) in hists.iter().zip(root.split_evenly((hists.len(), 1)).iter()) {
        // Every bucket from the lowest to the highest nonempty one, empty ones included.
        let (Some(&lo), Some(&hi)) = (h.buckets.keys().next(), h.buckets.keys().next_back()) else {
            area.titled(
                &format!("latency/{name} @{hname}: count 0"),
                ("sans-serif", 18),
            )
            .map_err(err)?;
            continue;
        };
        let mut bounds = vec![lo];
        while let Some(&b) = bounds.last().filter(|&&b| b < hi) {
            bounds.push(if b == 0 { 1 } else { b * 2 });
        }
        let n = bounds.len() as u32;
        let max = h.buckets.values().copied().max().unwrap_or(1);
        let pct = |p| {
            h.percentile_low(p)
                .map(|lo| format!("[{}, {})", bucket(lo), bucket(parse::bucket_high(lo))))
                .unwrap_or_default()
        };
        let caption = format!(
            "latency/{name} @{hname}: count {} (ns), p50 in {}, p99 in {}",
            thousands(h.buckets.values().sum()),
            pct(50),
            pct(99)
        );
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(segments(n), 0..max + max / 10 + 1)
            .map_err(err)?;
        let label = |v: &SegmentValue<u32>| match v {
            SegmentValue::CenterOf(i) => bounds
                .get(*i as usize)
                .map(|&b| bucket(b))
                .unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n as usize)
            .x_label_formatter(&label)
            .y_desc("count")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(bounds.iter().enumerate().map(|(i, b)| {
                let v = h.buckets.get(b).copied().unwrap_or(0);
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i as u32), 0),
                        (SegmentValue::Exact(i as u32 + 1), v),
                    ],
                    RGBColor(40, 110, 190).filled(),
                );
                bar.set_margin(0, 0, 2, 2);
                bar
            }))
            .map_err(err)?;
    }
    root.present().map_err(err)
}
