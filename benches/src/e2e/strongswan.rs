//! strongSwan for comparison rows: [`Charon`], one charon in a namespace with its own
//! strongswan.conf and `/run` (bind-mounted: the pid file path is fixed) — the `ike`
//! scenario's strongSwan responder — and [`Tunnel`], the e2e comparison: a strongSwan ↔
//! strongSwan IKEv2 tunnel (AES-128-GCM, userspace ESP via the kernel-libipsec plugin, since
//! this kernel has no ESP) between the client and gateway namespaces, carrying the same UDP
//! load to the same sink.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::topo::{CLIENT, GW, ns_sh, sh};

const CHARON: &str = "/usr/lib/ipsec/charon";
const SWANCTL: &str = "/usr/sbin/swanctl";
const CONF: &str = include_str!("../../strongswan/strongswan.conf.in");
const GW_CONF: &str = include_str!("../../strongswan/gw.conf");
const CLIENT_CONF: &str = include_str!("../../strongswan/client.conf");

/// Why strongSwan cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    [CHARON, SWANCTL]
        .iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| format!("strongSwan is not installed ({p} missing; Debian: strongswan-charon strongswan-swanctl libcharon-extra-plugins)"))
}

/// One charon in a namespace, its files in its own folder; stopped when dropped.
#[derive(Debug)]
pub struct Charon {
    child: Child,
    dir: PathBuf,
}

impl Charon {
    /// Start charon in namespace `ns` with `settings` added to the `charon { }` section of
    /// strongswan.conf, and load `swanctl` (a swanctl.conf) into it. Files go to
    /// `<dir>/ss-<ns>`.
    pub fn start(ns: &str, dir: &Path, settings: &str, swanctl: &str) -> Result<Self, String> {
        if let Some(why) = unavailable() {
            return Err(why);
        }
        let d = dir.join(format!("ss-{ns}"));
        let run = d.join("run");
        std::fs::create_dir_all(&run).map_err(|e| format!("{}: {e}", run.display()))?;
        let _ = std::fs::remove_file(d.join("charon.vici"));
        let ss_conf = d.join("strongswan.conf");
        let conf = CONF
            .replace("@RUN@", &d.display().to_string())
            .replace("    @SETTINGS@\n", settings);
        std::fs::write(&ss_conf, conf).map_err(|e| e.to_string())?;
        let swanctl_conf = d.join("swanctl.conf");
        std::fs::write(&swanctl_conf, swanctl).map_err(|e| e.to_string())?;
        let out = std::fs::File::create(d.join("charon.stdout")).map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c"])
            .arg(format!(
                "mount --bind '{}' /run && exec {CHARON}",
                run.display()
            ))
            .env("STRONGSWAN_CONF", &ss_conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("charon in {ns}: {e}"))?;
        let charon = Charon { child, dir: d };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !charon.dir.join("charon.vici").exists() {
            if Instant::now() > deadline {
                return Err(format!(
                    "charon in {ns} did not come up: {}",
                    std::fs::read_to_string(charon.dir.join("charon.stdout")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        charon.swanctl(&["--load-all", "--file", &swanctl_conf.display().to_string()])?;
        Ok(charon)
    }

    /// Run `swanctl ARGS… --uri <this charon>`.
    pub fn swanctl(&self, args: &[&str]) -> Result<String, String> {
        let uri = format!("unix://{}/charon.vici", self.dir.display());
        let mut full = vec![SWANCTL];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--uri", &uri]);
        sh(&full)
    }

    /// The process id of charon (`ip netns exec` and `sh -c … exec` keep the pid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// charon's log file so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default()
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        // SAFETY: kill(2) of our own child (sh exec'd charon in place).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two charons with an established CHILD_SA; stopped when dropped.
#[derive(Debug)]
pub struct Tunnel {
    _charons: [Charon; 2],
}

impl Tunnel {
    /// Start both charons, load their configurations and bring the tunnel up.
    pub fn up(dir: &Path) -> Result<Self, String> {
        let gw = Charon::start(GW, dir, "", GW_CONF)?;
        let client = Charon::start(CLIENT, dir, "", CLIENT_CONF)?;
        client.swanctl(&["--initiate", "--child", "net", "--timeout", "10"])?;
        // The virtual IP's route into the tunnel (table 220) must exist before we send.
        let routes = ns_sh(CLIENT, &["ip", "route", "show", "table", "220"])?;
        if !routes.contains("10.9.0.0/24") {
            return Err(format!("no tunnel route in the client: {routes}"));
        }
        Ok(Tunnel {
            _charons: [gw, client],
        })
    }
}
