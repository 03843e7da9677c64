//! RFC 3948 §2 classification of a UDP/4500 payload (IKE, keepalive, ESP or refused) on
//! arbitrary bytes. Must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = xdpsec_dataplane::natt::classify(data);
});
