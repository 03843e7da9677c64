//! The `xdpsec` command line without a running gateway: configuration checks, one-line errors
//! with exit status 2, completions, and a helpful message when no gateway is running.

// Test code: failing loudly on an unexpected error is the point (see clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn xdpsec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdpsec"))
        .args(args)
        .output()
        .unwrap()
}

fn example() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/netns/gw-example.toml"),
    )
    .unwrap()
}

fn temp(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("xdpsec-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "exit status 2 for bad input");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn config_check_accepts_the_example_and_names_bad_fields() {
    let good = temp("good.toml", &example());
    let out = xdpsec(&["config", "check", &good]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (2 SAs"));

    let cases = [
        (
            "aead = \"aes128gcm16\"",
            "aead = \"aes128ccm\"",
            "sa[0].aead: unknown AEAD",
        ),
        ("spi = 0x10000001", "spi = 12", "sa[0].spi: must be 256"),
        (
            "listen = \"192.0.2.2:4500\"",
            "listen = \"192.0.2.2\"",
            "gateway.listen:",
        ),
        (
            "tun = \"xdpsec0\"",
            "tun = \"a-very-long-interface-name\"",
            "gateway.tun:",
        ),
        (
            "routes = [\"10.99.0.0/24\"]",
            "routes = [\"10.99.0.0/99\"]",
            "gateway.routes:",
        ),
        (
            "mode = \"tunnel\"",
            "mode = \"tunnel\"\ncolour = \"blue\"",
            "colour",
        ),
    ];
    for (from, to, expect) in cases {
        let bad = temp("bad.toml", &example().replacen(from, to, 1));
        let err = one_line_error(&xdpsec(&["config", "check", &bad]));
        assert!(err.contains(expect), "{expect:?} not in {err:?}");
        assert!(err.contains("bad.toml:"), "names the file and line: {err}");
    }
}

#[test]
fn config_check_validates_ike_connections() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("xdpsec-cli-conn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let psk = dir.join("rw.psk");
    std::fs::write(&psk, "a decent pre-shared key\n").unwrap();
    std::fs::set_permissions(&psk, std::fs::Permissions::from_mode(0o600)).unwrap();
    let conn = "\n[[conn]]\nname = \"rw\"\nlocal_id = \"gw.example\"\npsk_file = \"rw.psk\"\npool = \"10.99.0.0/24\"\n";
    let good = dir.join("gw.toml");
    std::fs::write(&good, format!("{}{conn}", example())).unwrap();
    let out = xdpsec(&["config", "check", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 SAs, 1 connections"));

    for (from, to, expect) in [
        (
            "pool = \"10.99.0.0/24\"",
            "pool = \"10.99.0.0\"",
            "conn[0].pool: ",
        ),
        (
            "name = \"rw\"",
            "name = \"rw\"\nike = [\"3des-md5-modp768\"]",
            "conn[0].ike: \"3des-md5-modp768\": unknown algorithm",
        ),
        (
            "psk_file = \"rw.psk\"",
            "psk_file = \"nope.psk\"",
            "conn[0].psk_file: ",
        ),
        (
            "name = \"rw\"",
            "name = \"rw\"\nrole = \"initiator\"",
            "conn[0].remote: required",
        ),
    ] {
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, format!("{}{}", example(), conn.replacen(from, to, 1))).unwrap();
        let err = one_line_error(&xdpsec(&["config", "check", bad.to_str().unwrap()]));
        assert!(err.contains(expect), "{expect:?} not in {err:?}");
        assert!(err.contains("bad.toml:"), "names the file and line: {err}");
    }
    std::fs::set_permissions(&psk, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = one_line_error(&xdpsec(&["config", "check", good.to_str().unwrap()]));
    assert!(err.contains("readable by group or others"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pcap_with_a_bad_sa_file_or_capture_fails_in_one_line() {
    let bad = temp("bad-sa.toml", "[[sa]]\nspi = 1\n");
    let err = one_line_error(&xdpsec(&[
        "pcap",
        "decrypt",
        "--sa",
        &bad,
        "/nonexistent.pcap",
        "/tmp/x.pcap",
    ]));
    assert!(err.contains("bad-sa.toml:"), "{err}");
    let sas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo/sas.toml");
    let not_pcap = temp("not.pcap", "hello");
    let err = one_line_error(&xdpsec(&[
        "pcap",
        "decrypt",
        "--sa",
        sas.to_str().unwrap(),
        &not_pcap,
        "/tmp/x.pcap",
    ]));
    assert!(err.contains("not a pcap file"), "{err}");
}

#[test]
fn clients_explain_a_missing_gateway() {
    for args in [&["status"][..], &["stats"], &["sa", "list"]] {
        let mut full = args.to_vec();
        full.extend_from_slice(&["--socket", "/nonexistent/xdpsec.sock"]);
        let err = one_line_error(&xdpsec(&full));
        assert!(err.contains("is `xdpsec run` running?"), "{err}");
    }
}

#[test]
fn completions_and_help() {
    let out = xdpsec(&["completions", "bash"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("xdpsec"));
    let help = String::from_utf8(xdpsec(&["pcap", "--help"]).stdout).unwrap();
    assert!(help.contains("Examples:"), "{help}");
}
