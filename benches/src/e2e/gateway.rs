//! `xdpsec run` in the gateway namespace, with a configuration written by the benchmark
//! (e2e: static SAs matching the generator's; ike: a responder `[[conn]]`), stopped with
//! SIGINT when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::topo::{CLIENT_ADDR, GW, GW_ADDR, GW_WAN};
use crate::fixture::KEY;

/// SPI of the gateway's inbound SA (the generator's outbound).
pub const SPI_IN: u32 = 0x1000_0001;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The e2e gateway configuration for `backend` ("afxdp" or "socket").
pub fn config(backend: &str) -> String {
    format!(
        r#"# Written by xdpsec-bench e2e.
[gateway]
listen = "{GW_ADDR}"
wan = "{GW_WAN}"
backend = "{backend}"
tun = "xbtun0"
tun_mtu = 1500
routes = ["10.99.0.0/24"]

[[sa]]
spi = {SPI_IN:#x}
direction = "in"
mode = "tunnel"
aead = "aes128gcm16"
key = "0x{key}"
local = "{GW_ADDR}"
remote = "{CLIENT_ADDR}"
peer = "client"
replay_window = 1024
local_ts = ["10.9.0.0/24"]
remote_ts = ["10.99.0.0/24"]
"#,
        key = hex(&KEY)
    )
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    stats: PathBuf,
    log: PathBuf,
}

impl Gateway {
    /// Start `xdpsec run` with configuration `config`, files under `dir` named after `name`;
    /// waits until it is up.
    pub fn start(xdpsec: &Path, name: &str, config: &str, dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cfg = dir.join(format!("gw-{name}.toml"));
        std::fs::write(&cfg, config).map_err(|e| format!("{}: {e}", cfg.display()))?;
        let stats = dir.join(format!("stats-{name}.json"));
        let log = dir.join(format!("gw-{name}.log"));
        let _ = std::fs::remove_file(&stats);
        let logf = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let logf2 = logf.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", GW])
            .arg(xdpsec)
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--stats")
            .arg(&stats)
            .arg("--socket")
            .arg(dir.join(format!("api-{name}.sock")))
            .stdin(Stdio::null())
            .stdout(logf)
            .stderr(logf2)
            .spawn()
            .map_err(|e| format!("{}: {e}", xdpsec.display()))?;
        let mut gw = Self { child, stats, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gw.stats.exists() {
            if let Ok(Some(status)) = gw.child.try_wait() {
                return Err(format!(
                    "xdpsec run ({name}) exited with {status}: {}",
                    gw.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "xdpsec run ({name}) did not come up in 10 s: {}",
                    gw.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(gw)
    }

    /// The process id of `xdpsec run` (`ip netns exec` execs it in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The gateway's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The latest stats snapshot (written every 200 ms).
    pub fn stats(&self) -> Result<Value, String> {
        let text = std::fs::read_to_string(&self.stats)
            .map_err(|e| format!("{}: {e}", self.stats.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", self.stats.display()))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SAFETY: kill(2) of our own child (`ip netns exec` execs xdpsec in place).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Counters that matter for a point, summed over the workers (the socket backend runs one
/// per core, and the kernel picks which `SO_REUSEPORT` socket gets the flow): (rx frames,
/// decapsulated, written to the TUN, TUN drops, pipeline drops).
pub fn counters(stats: &Value) -> [u64; 5] {
    let mut sum = [0u64; 5];
    for w in stats["workers"].as_array().into_iter().flatten() {
        let n = |k: &str| w[k].as_u64().unwrap_or(0);
        let drops = w["drops"]
            .as_object()
            .map_or(0, |d| d.values().filter_map(Value::as_u64).sum());
        let c = [
            n("rx_frames"),
            n("decap_packets"),
            n("tun_tx"),
            n("tun_drops"),
            drops,
        ];
        for (s, v) in sum.iter_mut().zip(c) {
            *s += v;
        }
    }
    sum
}
