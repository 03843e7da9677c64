use super::*;

const GOOD: &str = r#"
[[sa]]
spi = 0x1234abcd
direction = "in"
mode = "tunnel"
aead = "aes128gcm16"
key = "0x000102030405060708090a0b0c0d0e0f10111213"
local = "192.0.2.2:4500"
remote = "any"
local_ts = ["10.9.0.0/24"]
remote_ts = ["10.99.0.0/24"]

[[sa]]
spi = 3000000000
direction = "out"
mode = "transport"
aead = "aes256gcm16"
key = "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23"
local = "192.0.2.2:4500"
remote = "any"
esn = true
nat_oa_remote = "10.0.1.2"
lifetime_packets_soft = 10
lifetime_packets_hard = 20
"#;

#[test]
fn parses_a_good_file() {
    let sas = parse("sa.toml", GOOD).unwrap();
    assert_eq!(sas.len(), 2);
    assert_eq!(sas[0].spi, 0x1234abcd);
    assert_eq!(sas[0].direction, Direction::In);
    assert_eq!(sas[0].remote, None);
    assert_eq!(sas[0].replay_window, DEFAULT_WINDOW);
    assert_eq!(sas[0].selectors.local[0].to_string(), "10.9.0.0/24");
    assert_eq!(sas[1].aead, Aead::Aes256Gcm16);
    assert_eq!(sas[1].key.salt(), [0x20, 0x21, 0x22, 0x23]);
    assert!(sas[1].esn);
    assert_eq!(sas[1].nat_oa.remote, Some("10.0.1.2".parse().unwrap()));
    assert_eq!(
        sas[1].lifetime.packets,
        Limit {
            soft: Some(10),
            hard: Some(20)
        }
    );
    // Same "remote" text → same peer.
    assert_eq!(sas[0].peer, sas[1].peer);
}

/// Replace the first occurrence of `from` in GOOD and return the one-line error.
fn error_for(from: &str, to: &str) -> String {
    let text = GOOD.replacen(from, to, 1);
    let e = parse("sa.toml", &text).unwrap_err().to_string();
    assert!(!e.contains('\n'), "error must be one line: {e}");
    e
}

#[test]
fn errors_name_file_line_sa_and_field() {
    assert_eq!(
        error_for("spi = 0x1234abcd", "spi = 7"),
        "sa.toml:3: sa[0].spi: must be 256 ..= 4294967295 (0..=255 are reserved, RFC 4303 §2.1)"
    );
    let e = error_for("0x000102030405060708090a0b0c0d0e0f10111213", "0x0001");
    assert!(
        e.starts_with("sa.toml:7: sa[0].key: aes128gcm16 needs 20 bytes"),
        "{e}"
    );
    let e = error_for("direction = \"out\"", "direction = \"sideways\"");
    assert!(
        e.starts_with("sa.toml:15: sa[1].direction: \"sideways\""),
        "{e}"
    );
    let e = error_for("local = \"192.0.2.2:4500\"", "local = \"192.0.2.2\"");
    assert!(
        e.contains("sa[0].local: \"192.0.2.2\" is not ADDRESS:PORT"),
        "{e}"
    );
    let e = error_for("aead = \"aes128gcm16\"", "aead = \"des\"");
    assert!(e.contains("sa[0].aead: unknown AEAD \"des\""), "{e}");
    let e = error_for("key = \"0x0001", "key = \"0xzz01");
    assert!(e.contains("sa[0].key: not a hex string"), "{e}");
    let e = error_for(
        "remote_ts = [\"10.99.0.0/24\"]",
        "remote_ts = [\"10.99.0.0/40\"]",
    );
    assert!(e.contains("sa[0].remote_ts:"), "{e}");
    let e = error_for("lifetime_packets_soft = 10", "lifetime_packets_soft = 30");
    assert!(
        e.contains("sa[1].lifetime_packets_soft: 30 must be below"),
        "{e}"
    );
    let e = error_for("remote = \"any\"", "remote = \"[2001:db8::1]:4500\"");
    assert!(e.contains("different address families"), "{e}");
}

#[test]
fn nat_oa_needs_transport_mode() {
    let text = GOOD.replacen(
        "remote_ts = [\"10.99.0.0/24\"]",
        "nat_oa_local = \"10.0.0.1\"",
        1,
    );
    let e = parse("sa.toml", &text).unwrap_err().to_string();
    assert!(e.contains("sa[0].nat_oa_local: only meaningful"), "{e}");
}

#[test]
fn duplicate_spi_in_one_direction_is_refused() {
    let text = format!("{GOOD}{}", &GOOD[..GOOD.find("local_ts").unwrap()]);
    let e = parse("sa.toml", &text).unwrap_err().to_string();
    assert!(
        e.contains("spi: duplicate: sa[0] already has spi 0x1234abcd"),
        "{e}"
    );
}

#[test]
fn unknown_fields_and_bad_toml_are_one_line_errors() {
    let e = parse("f.toml", "[[sa]]\nspi = 300\nsurprise = 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("f.toml:"), "{e}");
    assert!(e.contains("surprise"), "{e}");
    assert!(!e.contains('\n'));
    let e = parse("f.toml", "[[sa]\n").unwrap_err().to_string();
    assert!(e.starts_with("f.toml:1:"), "{e}");
}
