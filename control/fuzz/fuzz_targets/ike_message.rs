//! Any bytes into the IKEv2 message parser (RFC 7296 §3): an `IkeError` or a message, never a
//! panic; a parsed message re-encodes, and what it re-encodes to parses to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xdpsec_control::ike::parse_message;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = parse_message(data)
        && let Ok(bytes) = msg.emit()
    {
        let again = parse_message(&bytes);
        assert_eq!(again.as_ref().ok(), Some(&msg), "re-encoded message parses differently");
    }
});
