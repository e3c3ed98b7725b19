// SPDX-License-Identifier: GPL-2.0
//! The tool end to end, as a user runs it, on a debugfs-shaped tree made of files saved from a guest
//! run (`tests/fixtures/`, `latency_ipi` standing for `latency/ipi`, `stacks_RES` for `stacks/RES`):
//! `show`, `show --json`, `export --prometheus`, `stacks`, `plot`, and the errors. No module and no root needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary copy of the fixtures in the module's layout; removed when dropped.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let root = std::env::temp_dir().join(format!("resched-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("latency")).unwrap();
        std::fs::create_dir_all(root.join("stacks")).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for entry in std::fs::read_dir(&fixtures).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let dest = if let Some(file) = name.strip_prefix("latency_") {
                root.join("latency").join(file)
            } else if let Some(file) = name.strip_prefix("stacks_") {
                root.join("stacks").join(file)
            } else {
                root.join(&name)
            };
            std::fs::copy(entry.path(), dest).unwrap();
        }
        std::fs::write(root.join("cpus"), "0-3\n").unwrap();
        Tree(root)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn resched(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resched"))
        .args(args)
        .env("RESCHED_DIR", dir)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn show_prints_the_files_as_perf_stat() {
    let tree = Tree::new("show");
    let out = resched(&tree.0, &["show"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    // ipi's RES row sums to 1988 + 2013 + 144 + 160; CFT to 902.
    let line = |key: &str| {
        s.lines()
            .find(|l| l.contains(key))
            .unwrap_or("")
            .to_string()
    };
    assert!(line("ipi:RES").trim_start().starts_with("4,305 "), "{s}");
    assert!(line("ipi:CFT").trim_start().starts_with("902 "), "{s}");
    assert!(s.contains("IPI delivery, CFS"), "{s}");
}

#[test]
fn show_json_is_schema_resched_1_with_the_files_numbers() {
    let tree = Tree::new("json");
    let out = resched(&tree.0, &["show", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "resched/1");
    assert_eq!(v["cpus"], serde_json::json!([0, 1, 2, 3]));
    assert_eq!(
        v["tables"]["ipi"]["rows"]["RES"],
        serde_json::json!([1988, 2013, 144, 160])
    );
    assert_eq!(v["tables"]["ipi"]["rows"]["WKL"][3], 1831);
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0]["pid"], 109);
    assert_eq!(tasks[1]["preempted"], 163);
    assert!(
        v["histograms"]["latency/resched/local"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(!v["pairs"].as_array().unwrap().is_empty());
}

#[test]
fn export_writes_a_textfile_for_node_exporter() {
    let tree = Tree::new("export");
    let dest = tree.0.join("prom");
    std::fs::create_dir_all(&dest).unwrap();
    let out = resched(&tree.0, &["export", "--prometheus", dest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let prom = std::fs::read_to_string(dest.join("resched.prom")).unwrap();
    assert!(
        prom.contains("resched_ipi_sent_total{cpu=\"1\",type=\"RES\"} 2013"),
        "{prom}"
    );
    assert!(
        prom.contains("# TYPE resched_latency_seconds histogram"),
        "{prom}"
    );
    // Only the file itself is left: the temporary one was renamed into place.
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 1);
}

#[test]
fn errors_are_one_line_and_exit_2() {
    let tree = Tree::new("errors");
    let out = resched(&tree.0.join("nonexistent"), &["show"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("resched: ") && err.contains("does not exist"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // A file the tool cannot parse is an error too, not a panic.
    std::fs::write(tree.0.join("ipi"), "garbage\n").unwrap();
    let out = resched(&tree.0, &["show"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    // A bad option is clap's usage error.
    let out = resched(&tree.0, &["top", "-d", "-1"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The stack counts of a `stacks/<tag>` file (the `N hits on CPUs` lines).
fn stack_counts(file: &str) -> Vec<u64> {
    file.lines()
        .filter_map(|l| l.trim().split_once(" hits on CPUs "))
        .map(|(n, _)| n.parse().unwrap())
        .collect()
}

/// The texts of an SVG's `<text>` and `<title>` elements.
fn svg_texts(svg: &str) -> Vec<String> {
    let opt = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(svg, opt).expect("the SVG parses");
    doc.descendants()
        .filter(|n| n.has_tag_name("text") || n.has_tag_name("title"))
        .map(|n| {
            n.descendants()
                .filter(|d| d.is_text())
                .filter_map(|d| d.text())
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn stacks_folded_counts_are_the_tables() {
    let tree = Tree::new("stacks");
    let out = resched(&tree.0, &["stacks", "RES", "--folded"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let folded = text(&out.stdout);
    let file = std::fs::read_to_string(tree.0.join("stacks/RES")).unwrap();
    let want: u64 = stack_counts(&file).iter().sum();
    // The first frame after each blank line, without its offset.
    let lines: Vec<&str> = file.lines().collect();
    let innermost: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0].trim().is_empty())
        .map(|w| w[1].trim().split("+0x").next().unwrap().to_string())
        .collect();
    let mut sum = 0;
    for line in folded.lines() {
        let (stack, n) = line.rsplit_once(' ').unwrap();
        sum += n.parse::<u64>().unwrap();
        // Outermost first: the probed function (the file's first frame of a stack) last.
        let inner = stack.rsplit(';').next().unwrap();
        assert!(
            innermost.contains(&inner.to_string()),
            "{line} {innermost:?}"
        );
        assert!(!stack.contains("+0x"), "{line}");
    }
    assert_eq!(sum, want, "{folded}");
    assert!(folded
        .contains("entry_SYSCALL_64_after_hwframe;do_syscall_64;ksys_write;vfs_write;pipe_write;"));
    // The flame graph: every frame a box titled with its hits, the root the table's total.
    let svg = tree.0.join("res.svg");
    let out = resched(&tree.0, &["stacks", "RES", "--svg", svg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with(&format!("all ({} hits", thousands(want)))),
        "{texts:?}"
    );
    assert!(texts
        .iter()
        .any(|t| t.starts_with("wake_up_new_task (3 hits")));
    // No such tag: the module's file is missing, one line and exit 2.
    let out = resched(&tree.0, &["stacks", "NOPE"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does not exist"));
}

fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn plot_matrix_labels_the_cpus_and_says_the_totals() {
    let tree = Tree::new("matrix");
    let svg = tree.0.join("m.svg");
    let out = resched(&tree.0, &["plot", "matrix", "--svg", svg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    // The fixture: RES 1 IPI in all; CAL 306 (86 + 87 + 90 + 8 + 1 + 14 + 3 + 2 + 1 + 8 + 1 + 5).
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("RES: 1 reschedule IPIs")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("CAL: 306 function call IPIs")),
        "{texts:?}"
    );
    for cpu in 0..4 {
        assert!(
            texts.iter().filter(|t| **t == format!("CPU{cpu}")).count() >= 4,
            "{texts:?}"
        );
    }
    // Each nonzero cell carries its count (4 CPUs: small enough to print them).
    for v in ["86", "87", "90", "14"] {
        assert!(texts.iter().any(|t| t == v), "{v} {texts:?}");
    }
}

#[test]
fn plot_pairs_and_latency() {
    let tree = Tree::new("pairs");
    let svg = tree.0.join("p.svg");
    let out = resched(
        &tree.0,
        &["plot", "pairs", "-n", "5", "--svg", svg.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    let file = std::fs::read_to_string(tree.0.join("pairs")).unwrap();
    let mut rows: Vec<(u64, String)> = file
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let n = w.first()?.parse().ok()?;
            (w.len() == 4).then(|| (n, format!("{} {} -> {}", w[1], w[2], w[3])))
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let top: u64 = rows.iter().take(5).map(|r| r.0).sum();
    assert!(
        texts
            .iter()
            .any(|t| t.contains(&format!(": {} of ", thousands(top)))),
        "{top} {texts:?}"
    );
    for (n, label) in rows.iter().take(5) {
        assert!(texts.iter().any(|t| t == label), "{label} {texts:?}");
        assert!(
            texts.iter().any(|t| t.trim() == n.to_string()),
            "{n} {texts:?}"
        );
    }
    let out = resched(
        &tree.0,
        &["plot", "latency", "resched", "--svg", svg.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    assert!(
        texts.iter().any(|t| t
            == "latency/resched @local: count 3,341 (ns), p50 in [64K, 128K), p99 in [512K, 1M)"),
        "{texts:?}"
    );
    let out = resched(&tree.0, &["plot", "latency", "nope", "--svg", "x.svg"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definitions() {
    let tree = Tree::new("install");
    for shell in ["bash", "zsh", "fish"] {
        let out = resched(&tree.0, &["completions", shell]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in ["stat", "show", "top", "noise", "stacks", "plot", "export"] {
            assert!(script.contains(sub), "{shell}: {sub}");
        }
    }
    let out = resched(&tree.0, &["completions", "nosuchshell"]);
    assert_eq!(out.status.code(), Some(2));
    let dir = tree.0.join("man");
    std::fs::create_dir_all(&dir).unwrap();
    let out = resched(&tree.0, &["manpages", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for page in [
        "resched.1",
        "resched-stat.1",
        "resched-stacks.1",
        "resched-plot-matrix.1",
    ] {
        let roff = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(roff.contains(".TH "), "{page}");
    }
    // The hidden helpers are no pages of their own.
    assert!(!dir.join("resched-completions.1").exists());
    let out = resched(&tree.0, &["manpages", "/nonexistent/dir"]);
    assert_eq!(out.status.code(), Some(2));
}
