//! Named reasons for every IKE message, payload or crypto operation we refuse.
//!
//! Hostile input is normal input: parsers and crypto return one of these instead of
//! panicking. Names are stable (`snake_case`): they appear in logs, counters and JSON.

macro_rules! ike_errors {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, )+) => {
        /// Why an IKE message or operation was refused. Each variant has a stable name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum IkeError {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl IkeError {
            /// Every error, in declaration order.
            pub const ALL: &'static [IkeError] = &[$(IkeError::$variant,)+];

            /// Stable `snake_case` name.
            pub const fn name(self) -> &'static str {
                match self { $(IkeError::$variant => $name,)+ }
            }
        }
    };
}

ike_errors! {
    // --- message framing (RFC 7296 §3.1, §3.2) ---
    /// Shorter than the 28-byte IKE header.
    TruncatedHeader => "truncated_header",
    /// Major version is not 2 (RFC 7296 §3.1: answer INVALID_MAJOR_VERSION, or drop).
    UnsupportedMajorVersion => "unsupported_major_version",
    /// The header's Length disagrees with the datagram, or is below 28.
    BadMessageLength => "bad_message_length",
    /// Larger than the 64 KiB we accept or build.
    MessageTooLong => "message_too_long",
    /// A generic payload header or body runs past the end of the message.
    TruncatedPayload => "truncated_payload",
    /// A payload length below the generic header (4 bytes) or below its fixed part.
    BadPayloadLength => "bad_payload_length",
    /// More payloads than we are willing to parse in one message.
    TooManyPayloads => "too_many_payloads",
    /// An unknown payload type with the critical bit set (RFC 7296 §2.5, §3.2).
    UnsupportedCriticalPayload => "unsupported_critical_payload",
    /// Bytes remain after the last payload of the chain (Next Payload = 0).
    TrailingBytes => "trailing_bytes",
    /// The Encrypted payload is not the last payload (RFC 7296 §3.14).
    EncryptedPayloadNotLast => "encrypted_payload_not_last",
    // --- payload bodies (RFC 7296 §3.3 - §3.15) ---
    /// Proposal substructure malformed (RFC 7296 §3.3.1).
    BadProposal => "bad_proposal",
    /// Transform substructure malformed (RFC 7296 §3.3.2).
    BadTransform => "bad_transform",
    /// Transform attribute malformed (RFC 7296 §3.3.5).
    BadAttribute => "bad_attribute",
    /// More proposals, transforms, selectors, SPIs or attributes than we accept.
    TooManyItems => "too_many_items",
    /// Key Exchange payload malformed (RFC 7296 §3.4).
    BadKePayload => "bad_ke_payload",
    /// Identification payload malformed (RFC 7296 §3.5).
    BadIdPayload => "bad_id_payload",
    /// Authentication payload malformed (RFC 7296 §3.8).
    BadAuthPayload => "bad_auth_payload",
    /// Nonce shorter than 16 or longer than 256 bytes (RFC 7296 §3.9).
    BadNonceLength => "bad_nonce_length",
    /// Notify payload malformed (RFC 7296 §3.10).
    BadNotifyPayload => "bad_notify_payload",
    /// Delete payload malformed (RFC 7296 §3.11).
    BadDeletePayload => "bad_delete_payload",
    /// Traffic Selector payload malformed (RFC 7296 §3.13).
    BadTrafficSelector => "bad_traffic_selector",
    /// Configuration payload malformed (RFC 7296 §3.15).
    BadConfigPayload => "bad_config_payload",
    /// Encrypted payload too short for IV and ICV (RFC 7296 §3.14).
    BadEncryptedPayload => "bad_encrypted_payload",
    /// A payload too long to be encoded (length fields are 16 bits).
    PayloadTooLong => "payload_too_long",
    // --- crypto ---
    /// ICV / AEAD tag did not verify (RFC 7296 §3.14, RFC 5282 §3).
    IntegrityCheckFailed => "integrity_check_failed",
    /// Ciphertext not a multiple of the block size (RFC 7296 §3.14).
    BadCiphertextLength => "bad_ciphertext_length",
    /// Pad Length exceeds the decrypted data (RFC 7296 §3.14).
    BadPadding => "bad_padding",
    /// Transform ID or combination we do not implement.
    UnsupportedTransform => "unsupported_transform",
    /// A key of the wrong length for the algorithm.
    BadKeyLength => "bad_key_length",
    /// prf+ asked for more than 255 blocks (RFC 7296 §2.13).
    PrfPlusTooLong => "prf_plus_too_long",
    /// Peer's KE data has the wrong length or is not a valid point (RFC 5903 §7, RFC 8031).
    BadPublicKey => "bad_public_key",
    /// The key agreement failed (e.g. low-order X25519 point).
    KeyAgreementFailed => "key_agreement_failed",
    /// The random source failed.
    RandomFailed => "random_failed",
    /// KE group differs from the negotiated group (RFC 7296 §1.2: INVALID_KE_PAYLOAD).
    KeGroupMismatch => "ke_group_mismatch",
    /// The peer's AUTH payload did not verify (RFC 7296 §2.15: AUTHENTICATION_FAILED).
    AuthenticationFailed => "authentication_failed",
    // --- negotiation (RFC 7296 §2.7) ---
    /// No offered proposal matches our configuration (NO_PROPOSAL_CHOSEN).
    NoProposalChosen => "no_proposal_chosen",
}

impl core::fmt::Display for IkeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for IkeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for e in IkeError::ALL {
            let n = e.name();
            assert!(
                n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{n}"
            );
            assert!(seen.insert(n), "duplicate {n}");
            assert_eq!(e.to_string(), n);
        }
    }
}
