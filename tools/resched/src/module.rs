// SPDX-License-Identifier: GPL-2.0
//! Where the module's files are, and reading them with clear errors: module not loaded, debugfs not
//! mounted, no rights.

use anyhow::{bail, Result};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The module's debugfs directory (`RESCHED_DIR` overrides it, for tests).
#[derive(Clone, Debug)]
pub struct Module {
    pub dir: PathBuf,
}

impl Module {
    /// Finds the directory, or says why it cannot be used.
    pub fn open() -> Result<Self> {
        let dir = std::env::var_os("RESCHED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/sys/kernel/debug/resched"));
        let m = Module { dir };
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<()> {
        match std::fs::metadata(&self.dir) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => bail!("{} is not a directory", self.dir.display()),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => bail!(
                "cannot read {}: permission denied (debugfs is root-only: run as root)",
                self.dir.display()
            ),
            Err(_) => {
                let debugfs = self.dir.parent().unwrap_or(Path::new("/"));
                if std::env::var_os("RESCHED_DIR").is_none() && !is_mounted(debugfs) {
                    bail!(
                        "debugfs is not mounted at {} (mount -t debugfs none {})",
                        debugfs.display(),
                        debugfs.display()
                    );
                }
                bail!(
                    "{} does not exist: is the resched_probe module loaded? (insmod resched_probe.ko)",
                    self.dir.display()
                );
            }
        }
        // The directory of a root-only debugfs may be listable while its files are not.
        self.read("cpus").map(|_| ())
    }

    /// The text of file `name`.
    pub fn read(&self, name: &str) -> Result<String> {
        let path = self.dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => bail!(
                "cannot read {}: permission denied (the module's files are root-only)",
                path.display()
            ),
            Err(e) if e.kind() == ErrorKind::NotFound => bail!(
                "{} does not exist: the module was unloaded, or is older than this tool",
                path.display()
            ),
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        }
    }

    /// The path of file `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Whether `dir` is a mount point listed in /proc/self/mounts.
fn is_mounted(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split_whitespace().nth(1) == Some(&*dir.to_string_lossy()))
    })
}
