// SPDX-License-Identifier: GPL-2.0
//! `resched`: the user-side tool of rust_resched_probe. See `resched --help` and tools/resched/README.md.

mod export;
mod module;
mod noise;
mod parse;
mod plot;
mod snapshot;
mod stacks;
mod stat;
mod top;

use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Who sends IPIs to whom, how often CPUs are asked to reschedule, and how long it all takes:
/// the numbers of the rust_resched_probe module (/sys/kernel/debug/resched), for a command, live, as
/// JSON or for Prometheus.
#[derive(Parser)]
#[command(name = "resched", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run CMD attached and print what happened while it ran, as `perf stat` does; exits with CMD's
    /// exit code.
    Stat {
        /// Per CPU rather than totals.
        #[arg(short = 'A', long = "per-cpu")]
        per_cpu: bool,
        /// One JSON document (schema resched/1) instead of the text.
        #[arg(long)]
        json: bool,
        /// Running processes (every thread) instead of CMD, until Ctrl-C, `--duration` or their exit.
        #[arg(
            short = 'p',
            long = "pid",
            value_delimiter = ',',
            conflicts_with = "cmd"
        )]
        pids: Vec<i32>,
        /// With `-p`: seconds to watch.
        #[arg(long, value_parser = positive, requires = "pids")]
        duration: Option<f64>,
        /// The command and its arguments.
        #[arg(last = true, required_unless_present = "pids")]
        cmd: Vec<String>,
    },
    /// Every number the module exports, now.
    Show {
        /// One JSON document (schema resched/1).
        #[arg(long)]
        json: bool,
    },
    /// Live per-second rates per CPU and kind, the busiest pairs and the attached tasks; `q` or
    /// Ctrl-C quits.
    Top {
        /// Seconds between refreshes.
        #[arg(short = 'd', long = "delay", default_value_t = 1.0, value_parser = positive)]
        delay: f64,
        /// Stop after this many refreshes (default: until `q`).
        #[arg(short = 'n', long)]
        iterations: Option<u64>,
    },
    /// What interrupted CPU N during the window and for how long: the local timer, the IPIs, device
    /// interrupts, softirqs and the queued calls, most time first.
    Noise {
        /// The CPU.
        #[arg(short = 'C', long = "cpu")]
        cpu: u32,
        /// Seconds to watch.
        #[arg(short = 'd', long = "duration", default_value_t = 1.0, value_parser = positive)]
        duration: f64,
        /// One JSON document (schema resched-noise/1).
        #[arg(long)]
        json: bool,
    },
    /// A stack table (stacks/TAG: RES, CFS, CFM, RSC, WKL) in the folded format of FlameGraph and
    /// inferno (`frame;frame count`, outermost first), or drawn as a flame graph.
    Stacks {
        /// The tag: the file under stacks/.
        tag: String,
        /// Write the folded lines to standard output (the default without --svg).
        #[arg(long)]
        folded: bool,
        /// Draw the flame graph into FILE (SVG).
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Keep each frame's offset (`+0x1f`): calls of one function from different places stay apart.
        #[arg(long)]
        offsets: bool,
    },
    /// Pictures of the tables, as SVG: the sender x target heat map, the busiest pairs, the latency
    /// histograms.
    Plot {
        #[command(subcommand)]
        what: plot::What,
    },
    /// Shell completions for SHELL on standard output (make install-tool puts them where shells look).
    #[command(hide = true)]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// The man pages (resched.1 and one per subcommand, resched-stat.1 ...) into DIR.
    #[command(hide = true)]
    Manpages {
        /// The folder to write them into (it must exist).
        dir: PathBuf,
    },
    /// Write the numbers for node_exporter's textfile collector (DIR/resched.prom, replaced
    /// atomically).
    Export {
        /// The collector's directory (node_exporter --collector.textfile.directory).
        #[arg(long = "prometheus", value_name = "DIR")]
        dir: PathBuf,
        /// Write every S seconds until interrupted (default: once).
        #[arg(long, value_parser = positive)]
        interval: Option<f64>,
        /// Also the sender x target series (CPUs^2 of them).
        #[arg(long)]
        matrix: bool,
    },
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stat {
            per_cpu,
            json,
            pids,
            duration,
            cmd,
        } => {
            if pids.is_empty() {
                stat::run(&cmd, per_cpu, json)
            } else {
                stat::pids(&pids, duration, per_cpu, json).map(|()| 0)
            }
        }
        Command::Show { json } => stat::show(json).map(|()| 0),
        Command::Top { delay, iterations } => top::run(delay, iterations).map(|()| 0),
        Command::Noise {
            cpu,
            duration,
            json,
        } => noise::run(cpu, duration, json).map(|()| 0),
        Command::Stacks {
            tag,
            folded,
            svg,
            offsets,
        } => stacks::run(&tag, folded, svg.as_deref(), offsets).map(|()| 0),
        Command::Plot { what } => plot::run(what).map(|()| 0),
        Command::Completions { shell } => {
            // Into a buffer first: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "resched", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)
                .map_err(anyhow::Error::from)
                .map(|()| 0)
        }
        Command::Manpages { dir } => clap_mangen::generate_to(Cli::command(), &dir)
            .map_err(|e| anyhow::anyhow!("cannot write the man pages into {}: {e}", dir.display()))
            .map(|()| 0),
        Command::Export {
            dir,
            interval,
            matrix,
        } => export::run(&dir, interval, matrix).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("resched: {e:#}");
            ExitCode::from(2)
        }
    }
}
