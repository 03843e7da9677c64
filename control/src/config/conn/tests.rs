use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::config::gateway::parse;

/// A folder holding `rw.psk` (mode `mode`) for the configurations below.
fn psk_dir(mode: u32, content: &str) -> tempdir::Dir {
    let d = tempdir::Dir::new();
    let p = d.0.join("rw.psk");
    std::fs::write(&p, content).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    d
}

mod tempdir {
    /// A temporary folder removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "xdpsec-conn-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const GW: &str = r#"
[gateway]
listen = "192.0.2.2:4500"
backend = "socket"

[[conn]]
name = "rw"
local_id = "gw.example"
remote_id = "client.example"
psk_file = "rw.psk"
local_ts = ["10.9.0.0/24"]
pool = "10.99.0.0/24"
"#;

#[test]
fn responder_with_defaults() {
    let d = psk_dir(0o600, "interop-test-psk-0123456789\n");
    let g = parse("gw.toml", GW, &d.0).unwrap();
    let c = &g.conns[0];
    assert_eq!(c.name, "rw");
    assert_eq!(c.role, Role::Responder);
    assert_eq!(c.remote, None);
    assert_eq!(c.local_id, Identity::Fqdn("gw.example".into()));
    assert_eq!(c.remote_id, Some(Identity::Fqdn("client.example".into())));
    assert_eq!(&c.psk[..], b"interop-test-psk-0123456789");
    assert_eq!(c.ike.len(), 2);
    assert_eq!(c.esp.len(), 2);
    assert_eq!(c.pool, Some(("10.99.0.1".parse().unwrap(), 254)));
    assert_eq!(c.replay_window, 1024);
    assert!(c.encap, "ESP-in-UDP is forced by default");
    assert_eq!(c.timers, Timers::default());
}

#[test]
fn initiator_with_timers() {
    let d = psk_dir(0o400, "k");
    let text = GW.replace("pool = \"10.99.0.0/24\"", "").replace(
        "name = \"rw\"",
        "name = \"home\"\nrole = \"initiator\"\nremote = \"192.0.2.2\"\nrequest_vip = true\nencap = false\n\
             keepalive = \"5s\"\ndpd = 0\nchild_lifetime = \"90s\"\nrekey_margin = \"30s\"\n\
             ike = [\"aes256-sha256-ecp384\"]\nesp = [\"aes256gcm16-esn\"]",
    );
    let g = parse("gw.toml", &text, &d.0).unwrap();
    let c = &g.conns[0];
    assert_eq!(c.role, Role::Initiator);
    assert_eq!(c.remote, "192.0.2.2:500".parse().ok());
    assert!(c.request_vip);
    assert!(!c.encap);
    assert_eq!(c.timers.keepalive, Duration::from_secs(5));
    assert!(c.timers.dpd.is_zero());
    assert_eq!(c.timers.child_lifetime, Duration::from_secs(90));
    assert!(c.esp[0].esn);
}

#[test]
fn errors_name_file_line_conn_and_field() {
    let d = psk_dir(0o600, "k");
    let cases = [
        (
            "name = \"rw\"",
            "name = \"rw\"\nrole = \"server\"",
            "gw.toml:8: conn[0].role: \"server\" is not",
        ),
        (
            "name = \"rw\"",
            "name = \"rw\"\nrole = \"initiator\"",
            "conn[0].remote: required for an initiator",
        ),
        (
            "pool = \"10.99.0.0/24\"",
            "pool = \"2001:db8::/64\"",
            "conn[0].pool: \"2001:db8::/64\": virtual IP pools are IPv4",
        ),
        (
            "local_id = \"gw.example\"",
            "local_id = \"keyid:abc\"",
            "conn[0].local_id: \"keyid:abc\": keyid: needs an even",
        ),
        (
            "psk_file = \"rw.psk\"",
            "psk_file = \"missing.psk\"",
            "conn[0].psk_file: ",
        ),
        (
            "name = \"rw\"",
            "name = \"rw\"\nike = [\"aes128gcm16-prfsha256\"]",
            "conn[0].ike: \"aes128gcm16-prfsha256\": no DH group",
        ),
        (
            "name = \"rw\"",
            "name = \"rw\"\nesp = [\"aes256-sha256\"]",
            "conn[0].esp: ",
        ),
        (
            "name = \"rw\"",
            "name = \"rw\"\ndpd = \"10 parsecs\"",
            "conn[0].dpd: \"10 parsecs\" is not a duration",
        ),
        (
            "name = \"rw\"",
            "name = \"rw\"\nreplay_window = 100",
            "conn[0].replay_window: 100 is not 64..=4096",
        ),
        (
            "name = \"rw\"",
            "name = \"rw\"\nkeepalive = \"0s\"",
            "conn[0].keepalive: must be more than zero",
        ),
        (
            "name = \"rw\"",
            "name = \"a b\"",
            "conn[0].name: 1..64 characters",
        ),
    ];
    for (from, to, want) in cases {
        let e = parse("gw.toml", &GW.replace(from, to), &d.0).unwrap_err().0;
        assert!(e.contains(want), "{to}: {e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
    let twice = format!("{GW}{}", &GW[GW.find("[[conn]]").unwrap()..]);
    let e = parse("gw.toml", &twice, &d.0).unwrap_err().0;
    assert!(
        e.contains("conn[1].name: duplicate: conn[0] is also \"rw\""),
        "{e}"
    );
}

#[test]
fn psk_files_must_be_private_and_non_empty() {
    let d = psk_dir(0o644, "k");
    let e = parse("gw.toml", GW, &d.0).unwrap_err().0;
    assert!(
        e.contains("readable by group or others (mode 644): chmod 600"),
        "{e}"
    );
    let d = psk_dir(0o600, "\n");
    let e = parse("gw.toml", GW, &d.0).unwrap_err().0;
    assert!(e.contains("is empty"), "{e}");
}

#[test]
fn identities_and_durations() {
    assert_eq!(
        parse_identity("10.0.1.2"),
        Ok(Identity::Ipv4("10.0.1.2".parse().unwrap()))
    );
    assert_eq!(
        parse_identity("2001:db8::1"),
        Ok(Identity::Ipv6("2001:db8::1".parse().unwrap()))
    );
    assert_eq!(
        parse_identity("keyid:0x0102"),
        Ok(Identity::KeyId(vec![1, 2]))
    );
    assert_eq!(
        parse_identity("a@b.example"),
        Ok(Identity::Rfc822("a@b.example".into()))
    );
    assert!(parse_identity("has space").is_err());
    let d = |s: &str| parse_duration(&toml::Value::String(s.into()));
    assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(d("9m"), Ok(Duration::from_secs(540)));
    assert_eq!(d("4h"), Ok(Duration::from_secs(14400)));
    assert_eq!(
        parse_duration(&toml::Value::Integer(20)),
        Ok(Duration::from_secs(20))
    );
    assert!(d("99999999999999999999h").is_err());
    assert_eq!(
        parse_endpoint("[2001:db8::1]:4500"),
        "[2001:db8::1]:4500".parse().ok()
    );
}
