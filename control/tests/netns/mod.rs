//! Shared by the namespace tests: the topology of `scripts/netns/topo.sh` (client — nat — gw —
//! lan) with processes started inside it, all torn down on drop, also when a test fails.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn sh(args: &[&str]) -> std::process::Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The namespaces of one test; removed on drop, also when the test fails.
pub struct Topology {
    pub prefix: String,
    children: Vec<Child>,
}

impl Topology {
    pub fn up(prefix: &str) -> Self {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the namespace tests need root: run `sudo bash scripts/test.sh`"
        );
        // The process id in the names keeps concurrent runs (two checkouts on one machine)
        // out of each other's namespaces.
        let prefix = format!("{prefix}{}-", std::process::id());
        let topo = root().join("scripts/netns/topo.sh");
        sh(&["bash", topo.to_str().unwrap(), "up", &prefix]);
        Self {
            prefix,
            children: Vec::new(),
        }
    }

    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn spawn(&mut self, ns: &str, args: &[&str], log: &Path) {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(ns)])
            .args(args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    pub fn run(&self, ns: &str, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec"];
        let ns = self.ns(ns);
        full.push(&ns);
        full.extend_from_slice(args);
        String::from_utf8(sh(&full).stdout).unwrap()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SAFETY: plain kill(2) of our own child; SIGINT lets xdpsec shut down cleanly.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for c in &mut self.children {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let topo = root().join("scripts/netns/topo.sh");
        let _ = Command::new("bash")
            .args([topo.to_str().unwrap_or(""), "down", &self.prefix])
            .stdout(Stdio::null())
            .status();
    }
}

pub fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{what} did not appear: {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
