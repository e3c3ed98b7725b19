// SPDX-License-Identifier: GPL-2.0
//! The tool end to end, as a user runs it, on a debugfs-shaped tree made of files saved from a guest
//! run (`tests/fixtures/`, `latency_ipi` standing for `latency/ipi`): `show`, `show --json`,
//! `export --prometheus`, and the errors. No module and no root needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary copy of the fixtures in the module's layout; removed when dropped.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let root = std::env::temp_dir().join(format!("resched-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("latency")).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for entry in std::fs::read_dir(&fixtures).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let dest = match name.strip_prefix("latency_") {
                Some(file) => root.join("latency").join(file),
                None => root.join(&name),
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
