//! The comparison row: a strongSwan ↔ strongSwan IKEv2 tunnel (AES-128-GCM, userspace ESP via
//! the kernel-libipsec plugin, since this kernel has no ESP) between the client and gateway
//! namespaces, carrying the same UDP load to the same sink. One charon per namespace, each
//! with its own strongswan.conf and `/run` (bind-mounted: the pid file path is fixed).

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

/// Two charons with an established CHILD_SA; stopped when dropped.
#[derive(Debug)]
pub struct Tunnel {
    charons: Vec<(Child, PathBuf)>,
}

fn vici(dir: &Path) -> String {
    format!("unix://{}/charon.vici", dir.display())
}

impl Tunnel {
    /// Start both charons, load their configurations and bring the tunnel up.
    pub fn up(dir: &Path) -> Result<Self, String> {
        if let Some(why) = unavailable() {
            return Err(why);
        }
        let mut t = Tunnel {
            charons: Vec::new(),
        };
        for (ns, conf) in [(GW, GW_CONF), (CLIENT, CLIENT_CONF)] {
            let d = dir.join(format!("ss-{ns}"));
            let run = d.join("run");
            std::fs::create_dir_all(&run).map_err(|e| format!("{}: {e}", run.display()))?;
            let _ = std::fs::remove_file(d.join("charon.vici"));
            let ss_conf = d.join("strongswan.conf");
            std::fs::write(&ss_conf, CONF.replace("@RUN@", &d.display().to_string()))
                .map_err(|e| e.to_string())?;
            let swanctl_conf = d.join("swanctl.conf");
            std::fs::write(&swanctl_conf, conf).map_err(|e| e.to_string())?;
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
            t.charons.push((child, d.clone()));
            let deadline = Instant::now() + Duration::from_secs(5);
            while !d.join("charon.vici").exists() {
                if Instant::now() > deadline {
                    return Err(format!(
                        "charon in {ns} did not come up: {}",
                        std::fs::read_to_string(d.join("charon.stdout")).unwrap_or_default()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            sh(&[
                SWANCTL,
                "--load-all",
                "--file",
                &swanctl_conf.display().to_string(),
                "--uri",
                &vici(&d),
            ])?;
        }
        let client = dir.join(format!("ss-{CLIENT}"));
        sh(&[
            SWANCTL,
            "--initiate",
            "--child",
            "net",
            "--timeout",
            "10",
            "--uri",
            &vici(&client),
        ])?;
        // The virtual IP's route into the tunnel (table 220) must exist before we send.
        let routes = ns_sh(CLIENT, &["ip", "route", "show", "table", "220"])?;
        if !routes.contains("10.9.0.0/24") {
            return Err(format!("no tunnel route in the client: {routes}"));
        }
        Ok(t)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        for (c, _) in &mut self.charons {
            // SAFETY: kill(2) of our own child (sh exec'd charon in place).
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for (c, _) in &mut self.charons {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
