//! Known-answer tests for AES-GCM in ESP (RFC 4106) from the AES-GCM test cases of
//! draft-mcgrew-gcm-test-01 ("Test Cases for the use of Galois/Counter Mode (GCM) and Galois
//! Message Authentication Code (GMAC) in IPsec ESP", D. McGrew, 2009), §4, Test Cases 1–14.
//! The GMAC cases (ENCR_NULL_AUTH_AES_GMAC, RFC 4543) that follow them are out of scope: xdpsec
//! does not implement GMAC.
//!
//! Each case gives the key, the nonce (4-byte salt ‖ 8-byte explicit IV, RFC 4106 §4), the SPI,
//! the sequence number (8 octets when the SA uses extended sequence numbers, RFC 4106 §5), the
//! plaintext (payload ‖ padding ‖ pad length ‖ next header, RFC 4303 §2), the AAD, and the
//! ciphertext ‖ 16-byte ICV; plus the ESP packet as sent (SPI ‖ low 32 bits of the sequence
//! number ‖ IV ‖ ciphertext ‖ ICV, RFC 4106 §3, RFC 4303 §2.2.1).
//!
//! What is tested, through the crate's public API:
//! - **decrypt**: the draft's packet → [`InboundSa::open`] → the draft's plaintext, next header
//!   and payload length;
//! - **encrypt**: [`GcmKey::seal`] with the draft's IV and AAD → the draft's ciphertext ‖ ICV
//!   (the raw key API, because [`xdpsec_dataplane::esp::OutboundSa`] always uses IV = sequence
//!   number, RFC 4106 §3.1 "MAY", while the draft chose other IVs);
//! - **AAD**: our construction (RFC 4106 §5) of SPI ‖ [seq-hi ‖] seq-lo equals the draft's;
//! - **tamper**: one flipped bit anywhere in the ICV → [`DropReason::AuthFailed`].
//!
//! ESN: a fresh replay window can only infer a high half of 0 (RFC 4303 Appendix A2.2), so for
//! the cases whose 64-bit sequence number has a high half ≠ 0 (1, 5, 6, 9, 10, 11, 14) the test
//! skips [`InboundSa::check`] and passes the draft's full number to [`InboundSa::open`], which
//! builds the AAD from the SA's SPI and that number. Cases 8 and 13 (ESN, high half 0) go through
//! the whole check → open → commit path.
//!
//! Source of the values: see `tests/kat/README.md`. The decryption test makes the table
//! self-checking: a wrong digit in a key, salt, IV, SPI, sequence number, ciphertext or ICV makes
//! the ICV fail, a wrong digit in a plaintext makes the comparison fail.

// An integration test is test code throughout (helpers included): unwrap is fine here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead as _, KeyInit, Payload};
use aes_gcm::aes::Aes192;
use aes_gcm::{AesGcm, Nonce};
use xdpsec_dataplane::drop::DropReason;
use xdpsec_dataplane::esp::cipher::GcmKey;
use xdpsec_dataplane::esp::{HEADER_LEN, ICV_LEN, IV_LEN, InboundSa};
use xdpsec_dataplane::natt::{self, Class};
use xdpsec_dataplane::sa::{
    Aead, Direction, KeyMaterial, Lifetime, Mode, NatOa, PeerId, SaParams, Selectors,
};

/// One AES-GCM test case of draft-mcgrew-gcm-test-01 §4, as printed there (hex, whitespace
/// ignored).
struct Case {
    /// "Test Case N".
    n: u32,
    /// AES key (16, 24 or 32 octets).
    key: &'static str,
    /// SPI (4 octets).
    spi: &'static str,
    /// Sequence number: 4 octets, or 8 octets when the SA uses ESN.
    seq: &'static str,
    /// Salt (4 octets) ‖ explicit IV (8 octets).
    nonce: &'static str,
    /// Payload ‖ padding ‖ pad length ‖ next header.
    plaintext: &'static str,
    /// SPI ‖ sequence number, as the draft computed it.
    aad: &'static str,
    /// Ciphertext ‖ 16-octet ICV.
    ctext_tag: &'static str,
    /// The ESP packet: SPI ‖ seq (low 32 bits) ‖ IV ‖ ciphertext ‖ ICV.
    packet: &'static str,
}

/// draft-mcgrew-gcm-test-01 §4, Test Cases 1–14 (all AES-GCM test cases of the draft).
const CASES: &[Case] = &[
    // draft-mcgrew-gcm-test-01 §4, Test Case 1 (AES-128, ESN, high half ≠ 0).
    Case {
        n: 1,
        key: "4c80cdefbb5d10da906ac73c3613a634",
        spi: "00004321",
        seq: "8765432100000000",
        nonce: "2e443b684956ed7e3b244cfe",
        plaintext: "45000048699a000080114db7c0a80102
                    c0a801010a9bf15638d3010000010000
                    00000000045f736970045f7564700373
                    69700963796265726369747902646b00
                    0021000101020201",
        aad: "000043218765432100000000",
        ctext_tag: "fecf537e729d5b07dc30df528dd22b76
                    8d1b98736696a6fd348509fa13ceac34
                    cfa2436f14a3f3cf65925bf1f4a13c5d
                    15b21e1884f5ff6247aeabb786b93bce
                    61bc17d768fd9732459018148f6cbe72
                    2fd04796562dfdb4",
        packet: "00004321000000004956ed7e3b244cfe
                 fecf537e729d5b07dc30df528dd22b76
                 8d1b98736696a6fd348509fa13ceac34
                 cfa2436f14a3f3cf65925bf1f4a13c5d
                 15b21e1884f5ff6247aeabb786b93bce
                 61bc17d768fd9732459018148f6cbe72
                 2fd04796562dfdb4",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 2 (AES-128).
    Case {
        n: 2,
        key: "feffe9928665731c6d6a8f9467308308",
        spi: "0000a5f8",
        seq: "0000000a",
        nonce: "cafebabefacedbaddecaf888",
        plaintext: "4500003e698f000080114dccc0a80102
                    c0a801010a980035002a2343b2d00100
                    00010000000000000373697009637962
                    65726369747902646b00000100010001",
        aad: "0000a5f80000000a",
        ctext_tag: "deb22cd9b07c72c16e3a65beeb8df304
                    a5a5897d33ae530f1ba76d5d114d2a5c
                    3de81827c10e9a4f51330d0eec416642
                    cfbb85a5b47e48a4ec3b9ba95d918bd1
                    83b70d3aa8bc6ee4c309e9d85a41ad4a",
        packet: "0000a5f80000000afacedbaddecaf888
                 deb22cd9b07c72c16e3a65beeb8df304
                 a5a5897d33ae530f1ba76d5d114d2a5c
                 3de81827c10e9a4f51330d0eec416642
                 cfbb85a5b47e48a4ec3b9ba95d918bd1
                 83b70d3aa8bc6ee4c309e9d85a41ad4a",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 3 (AES-256).
    Case {
        n: 3,
        key: "abbccddef00112233445566778899aab
              abbccddef00112233445566778899aab",
        spi: "4a2cbfe3",
        seq: "00000002",
        nonce: "112233440102030405060708",
        plaintext: "4500003069a6400080062690c0a80102
                    9389155e0a9e008b2dc57ee000000000
                    7002400020bf0000020405b401010402
                    01020201",
        aad: "4a2cbfe300000002",
        ctext_tag: "ff425c9b724599df7a3bcd510194e00d
                    6a78107f1b0b1cbf06efae9d65a5d763
                    748a637985771d347f0545659f14e99d
                    ef842d8eb335f4eecfdbf831824b4c49
                    15956c96",
        packet: "4a2cbfe3000000020102030405060708
                 ff425c9b724599df7a3bcd510194e00d
                 6a78107f1b0b1cbf06efae9d65a5d763
                 748a637985771d347f0545659f14e99d
                 ef842d8eb335f4eecfdbf831824b4c49
                 15956c96",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 4 (AES-128, SPI 0: see `spi_zero_case`).
    Case {
        n: 4,
        key: "00000000000000000000000000000000",
        spi: "00000000",
        seq: "00000001",
        nonce: "000000000000000000000000",
        plaintext: "4500003c99c500008001cb7a40679318
                    010101010800075c0200440061626364
                    65666768696a6b6c6d6e6f7071727374
                    75767761626364656667686901020201",
        aad: "0000000000000001",
        ctext_tag: "4688daf2f973a392732909c331d56d60
                    f694abaa414b5e7ff5fdcdfff5e9a284
                    456476492719ffb64de7d9dca1e1d894
                    bc3bd57873ed4d181d19d4d5c8c18af3
                    f821d496eeb096e98ad2b69e4799c71d",
        packet: "00000000000000010000000000000000
                 4688daf2f973a392732909c331d56d60
                 f694abaa414b5e7ff5fdcdfff5e9a284
                 456476492719ffb64de7d9dca1e1d894
                 bc3bd57873ed4d181d19d4d5c8c18af3
                 f821d496eeb096e98ad2b69e4799c71d",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 5 (AES-128, ESN, high half ≠ 0).
    Case {
        n: 5,
        key: "3de09874b388e6491988d0c3607eae1f",
        spi: "42f67e3f",
        seq: "1010101010101010",
        nonce: "57690e434e280000a2fca1a3",
        plaintext: "4500003c99c300008001cb7c40679318
                    010101010800085c0200430061626364
                    65666768696a6b6c6d6e6f7071727374
                    75767761626364656667686901020201",
        aad: "42f67e3f1010101010101010",
        ctext_tag: "fba2caa4853cf9f0f22cb10d86dd83b0
                    fec75691cf1a04b00d1138ec9c357917
                    65acbd8701ad79845bf9fe3fba487bc9
                    1755e6662b4c8d0d1f5e22739530320a
                    e0d731cc978ecafaeae88f00e80d6e48",
        packet: "42f67e3f101010104e280000a2fca1a3
                 fba2caa4853cf9f0f22cb10d86dd83b0
                 fec75691cf1a04b00d1138ec9c357917
                 65acbd8701ad79845bf9fe3fba487bc9
                 1755e6662b4c8d0d1f5e22739530320a
                 e0d731cc978ecafaeae88f00e80d6e48",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 6 (AES-128, ESN, high half ≠ 0; same key, SPI,
    // sequence number and nonce as Case 5).
    Case {
        n: 6,
        key: "3de09874b388e6491988d0c3607eae1f",
        spi: "42f67e3f",
        seq: "1010101010101010",
        nonce: "57690e434e280000a2fca1a3",
        plaintext: "4500001c42a200008001441f406793b6
                    e00000020a00f5ff01020201",
        aad: "42f67e3f1010101010101010",
        ctext_tag: "fba2ca845e5df9f0f22c3e6e86dd831e
                    1fc65792cd1af9130e1379ed369f071f
                    35e034be95f112e4e7d05d35",
        packet: "42f67e3f101010104e280000a2fca1a3
                 fba2ca845e5df9f0f22c3e6e86dd831e
                 1fc65792cd1af9130e1379ed369f071f
                 35e034be95f112e4e7d05d35",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 7 (AES-192: not an algorithm of ours, see
    // `case_7_aes192`).
    Case {
        n: 7,
        key: "feffe9928665731c6d6a8f9467308308
              feffe9928665731c",
        spi: "0000a5f8",
        seq: "0000000a",
        nonce: "cafebabefacedbaddecaf888",
        plaintext: "45000028a4ad4000400678800a01038f
                    0a010612802306b8cb712602dd6bb03e
                    501016d075680001",
        aad: "0000a5f80000000a",
        ctext_tag: "a5b1f8066029aea40e598b8122de0242
                    0938b3ab33f828e687b8858b5bfbdbd0
                    315b27452144cc7795457b9652037f53
                    18027b5b4cd7a636",
        packet: "0000a5f80000000afacedbaddecaf888
                 a5b1f8066029aea40e598b8122de0242
                 0938b3ab33f828e687b8858b5bfbdbd0
                 315b27452144cc7795457b9652037f53
                 18027b5b4cd7a636",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 8 (AES-128, ESN, high half 0).
    Case {
        n: 8,
        key: "abbccddef00112233445566778899aab",
        spi: "00000100",
        seq: "0000000000000001",
        nonce: "decaf888cafedebaceface74",
        plaintext: "4500004933ba00007f119106c3fb1d10
                    c2b1d326c02831ce0035dd7b800302d5
                    00004e20001e8c18d75b81dc91baa047
                    6b91b924b280389d92c963bac046ec95
                    9b6266c04722b14923010101",
        aad: "000001000000000000000001",
        ctext_tag: "18a6fd42f72cbf4ab2a2ea901f73d814
                    e3e7f243d95412e1c349c1d2fbec168f
                    9190feebaf2cb01984e65863965d7472
                    b79da345e0e780191f0d2f0e0f496c22
                    6f2127b27db35724e7845d68651f57e6
                    5f354f75ff17015769623436",
        packet: "0000010000000001cafedebaceface74
                 18a6fd42f72cbf4ab2a2ea901f73d814
                 e3e7f243d95412e1c349c1d2fbec168f
                 9190feebaf2cb01984e65863965d7472
                 b79da345e0e780191f0d2f0e0f496c22
                 6f2127b27db35724e7845d68651f57e6
                 5f354f75ff17015769623436",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 9 (AES-256, ESN, high half ≠ 0).
    Case {
        n: 9,
        key: "abbccddef00112233445566778899aab
              abbccddef00112233445566778899aab",
        spi: "17405e67",
        seq: "156f3126dd0db99b",
        nonce: "73616c74616e640169766563",
        plaintext: "45080028732c00004006e9f90a010612
                    0a01038f06b88023dd6bafbecb712602
                    50101f646d540001",
        aad: "17405e67156f3126dd0db99b",
        ctext_tag: "f2d69ecdbd5a0d5b8d5ef38bad4da58d
                    1f278fde98ef67549d524a3018d9a57f
                    f4d3a31ce673119e451626c2415771e3
                    b7eebca614c89b35",
        packet: "17405e67dd0db99b616e640169766563
                 f2d69ecdbd5a0d5b8d5ef38bad4da58d
                 1f278fde98ef67549d524a3018d9a57f
                 f4d3a31ce673119e451626c2415771e3
                 b7eebca614c89b35",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 10 (AES-128, ESN, high half ≠ 0; same key, SPI,
    // sequence number and nonce as Cases 5 and 6).
    Case {
        n: 10,
        key: "3de09874b388e6491988d0c3607eae1f",
        spi: "42f67e3f",
        seq: "1010101010101010",
        nonce: "57690e434e280000a2fca1a3",
        plaintext: "45000049333e00007f119182c3fb1d10
                    c2b1d326c02831ce0035cb458003025b
                    000001e0001e8c18d65759d52284a035
                    2c71475c8880391c764d6e5ee0496b32
                    5ae270c03899493915010101",
        aad: "42f67e3f1010101010101010",
        ctext_tag: "fba2cad12fc1f9f00d3cebf305410db8
                    3d7784b607323d220f24b0a97d541828
                    00cadb0f68d99ef0e0c0c89ae9bea888
                    4e52d65bc1afd0740f742444747b5b39
                    ab533163aad4550ee5160975cdb608c5
                    769189609763b8e18caa81e2",
        packet: "42f67e3f101010104e280000a2fca1a3
                 fba2cad12fc1f9f00d3cebf305410db8
                 3d7784b607323d220f24b0a97d541828
                 00cadb0f68d99ef0e0c0c89ae9bea888
                 4e52d65bc1afd0740f742444747b5b39
                 ab533163aad4550ee5160975cdb608c5
                 769189609763b8e18caa81e2",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 11 (AES-256, ESN, high half ≠ 0; the payload is
    // not an IP packet).
    Case {
        n: 11,
        key: "abbccddef00112233445566778899aab
              abbccddef00112233445566778899aab",
        spi: "17405e67",
        seq: "156f3126dd0db99b",
        nonce: "73616c74616e640169766563",
        plaintext: "636973636f0172756c65730174686501
                    6e6574776501646566696e6501746865
                    746563686e6f6c6f6769657301746861
                    7477696c6c01646566696e65746f6d6f
                    72726f7701020201",
        aad: "17405e67156f3126dd0db99b",
        ctext_tag: "d4b7ed86a1777f2ea13d6973d324c69e
                    7b43f826fb56831226508bebd2dceb18
                    d0a6df10e5487df074113e14c641024e
                    3e6773d91a62ee429b043a10e3efe6b0
                    12a49363412364f8c0cac587f249e56b
                    11e24f30e44ccc76",
        packet: "17405e67dd0db99b616e640169766563
                 d4b7ed86a1777f2ea13d6973d324c69e
                 7b43f826fb56831226508bebd2dceb18
                 d0a6df10e5487df074113e14c641024e
                 3e6773d91a62ee429b043a10e3efe6b0
                 12a49363412364f8c0cac587f249e56b
                 11e24f30e44ccc76",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 12 (AES-128, sequence number 2^32 - 1, empty
    // payload: only padding and trailer).
    Case {
        n: 12,
        key: "7d773d00c144c525ac619d18c84a3f47",
        spi: "335467ae",
        seq: "ffffffff",
        nonce: "d966426743457e9182443bc6",
        plaintext: "01020201",
        aad: "335467aeffffffff",
        ctext_tag: "437f866bcb3f699fe9b0822bac961c45
                    04bef270",
        packet: "335467aeffffffff43457e9182443bc6
                 437f866bcb3f699fe9b0822bac961c45
                 04bef270",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 13 (AES-128, ESN, high half 0; the payload is not
    // an IP packet).
    Case {
        n: 13,
        key: "abbccddef00112233445566778899aab",
        spi: "00000100",
        seq: "0000000000000001",
        nonce: "decaf888cafedebaceface74",
        plaintext: "746f016265016f72016e6f7401746f01
                    62650001",
        aad: "000001000000000000000001",
        ctext_tag: "29c9fc69a197d038ccdd14e2ddfcaa05
                    43332164412503524303ed3c6c5f2838
                    43af8c3e",
        packet: "0000010000000001cafedebaceface74
                 29c9fc69a197d038ccdd14e2ddfcaa05
                 43332164412503524303ed3c6c5f2838
                 43af8c3e",
    },
    // draft-mcgrew-gcm-test-01 §4, Test Case 14 (AES-256, ESN, sequence number 2^64 - 1).
    Case {
        n: 14,
        key: "6c6567616c697a656d6172696a75616e
              61616e64646f69746265666f72656961",
        spi: "796b6963",
        seq: "ffffffffffffffff",
        nonce: "7475726e333021696765746d",
        plaintext: "45000030da3a00008001df3bc0a80005
                    c0a800010800c6cd0200070061626364
                    65666768696a6b6c6d6e6f7071727374
                    01020201",
        aad: "796b6963ffffffffffffffff",
        ctext_tag: "f97ab2aa356d8edce17644ac8c78e25d
                    d24dedbb29ebf1b64a274b39b49c3a86
                    4cd3d78ca4ae68a32b42458fb57dbe82
                    1dcc63b9d0937ba2945f669368661a32
                    9fb4c053",
        packet: "796b6963ffffffff333021696765746d
                 f97ab2aa356d8edce17644ac8c78e25d
                 d24dedbb29ebf1b64a274b39b49c3a86
                 4cd3d78ca4ae68a32b42458fb57dbe82
                 1dcc63b9d0937ba2945f669368661a32
                 9fb4c053",
    },
];

/// Hex (whitespace ignored) to bytes.
fn h(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(digits).unwrap()
}

impl Case {
    fn key(&self) -> Vec<u8> {
        h(self.key)
    }

    fn spi(&self) -> u32 {
        u32::from_be_bytes(h(self.spi).try_into().unwrap())
    }

    /// Whether the draft gives an 8-octet (ESN, RFC 4304) sequence number.
    fn esn(&self) -> bool {
        h(self.seq).len() == 8
    }

    /// The full sequence number (high half 0 without ESN).
    fn seq(&self) -> u64 {
        let b = h(self.seq);
        let mut full = [0u8; 8];
        full[8 - b.len()..].copy_from_slice(&b);
        u64::from_be_bytes(full)
    }

    fn salt(&self) -> Vec<u8> {
        h(self.nonce)[..4].to_vec()
    }

    fn iv(&self) -> [u8; 8] {
        h(self.nonce)[4..].try_into().unwrap()
    }

    /// Our algorithm for the key's length, if we have one.
    fn aead(&self) -> Option<Aead> {
        match self.key().len() {
            16 => Some(Aead::Aes128Gcm16),
            32 => Some(Aead::Aes256Gcm16),
            _ => None,
        }
    }

    /// Key ‖ salt (RFC 4106 §8.1).
    fn key_material(&self, aead: Aead) -> KeyMaterial {
        let mut km = self.key();
        km.extend_from_slice(&self.salt());
        KeyMaterial::new(aead, km).unwrap()
    }

    fn params(&self, mode: Mode, esn: bool) -> SaParams {
        let aead = self.aead().unwrap();
        SaParams {
            spi: self.spi(),
            direction: Direction::In,
            mode,
            aead,
            key: self.key_material(aead),
            local: "192.0.2.2:4500".parse().unwrap(),
            remote: None,
            peer: PeerId(0),
            esn,
            replay_window: 128,
            selectors: Selectors::default(),
            nat_oa: NatOa::default(),
            lifetime: Lifetime::default(),
        }
    }

    /// The draft's pad length and next header (the plaintext's last two octets, RFC 4303 §2).
    fn trailer(&self) -> (usize, u8) {
        let p = h(self.plaintext);
        (usize::from(p[p.len() - 2]), p[p.len() - 1])
    }

    /// Payload length implied by the draft's trailer.
    fn payload_len(&self) -> usize {
        h(self.plaintext).len() - 2 - self.trailer().0
    }

    /// A fresh replay window infers only a high half of 0: check() is usable for the others.
    fn checkable(&self) -> bool {
        self.seq() >> 32 == 0
    }
}

/// The cases our algorithms cover (all but the AES-192 Case 7).
fn supported() -> impl Iterator<Item = &'static Case> {
    CASES.iter().filter(|c| c.aead().is_some())
}

/// The table is complete and its fields agree with each other: the packet is SPI ‖ seq-lo ‖
/// IV ‖ ciphertext ‖ ICV (RFC 4303 §2, RFC 4106 §3), and lengths are as the draft prints them.
#[test]
fn table_is_consistent() {
    let numbers: Vec<u32> = CASES.iter().map(|c| c.n).collect();
    assert_eq!(numbers, (1..=14).collect::<Vec<_>>());
    for c in CASES {
        let n = c.n;
        assert_eq!(h(c.spi).len(), 4, "case {n}: SPI");
        assert!(matches!(h(c.seq).len(), 4 | 8), "case {n}: seq");
        assert_eq!(h(c.nonce).len(), 12, "case {n}: nonce");
        assert!(matches!(c.key().len(), 16 | 24 | 32), "case {n}: key");
        assert_eq!(
            h(c.ctext_tag).len(),
            h(c.plaintext).len() + ICV_LEN,
            "case {n}: ciphertext ‖ ICV length"
        );
        let mut packet = h(c.spi);
        packet.extend_from_slice(&(c.seq() as u32).to_be_bytes());
        packet.extend_from_slice(&c.iv());
        packet.extend_from_slice(&h(c.ctext_tag));
        assert_eq!(h(c.packet), packet, "case {n}: packet");
    }
    assert_eq!(supported().count(), 13);
}

/// RFC 4106 §5: the AAD is SPI ‖ 32-bit sequence number, or SPI ‖ 64-bit extended sequence
/// number (high half first) with ESN — the same bytes the draft authenticated.
#[test]
fn aad_construction_matches_draft() {
    for c in CASES {
        let mut aad = c.spi().to_be_bytes().to_vec();
        if c.esn() {
            aad.extend_from_slice(&c.seq().to_be_bytes());
        } else {
            aad.extend_from_slice(&(c.seq() as u32).to_be_bytes());
        }
        assert_eq!(aad, h(c.aad), "case {}", c.n);
    }
}

/// Decrypt the draft's ESP packet with [`InboundSa`]: the decrypted bytes are the draft's
/// plaintext (payload ‖ padding ‖ pad length ‖ next header), and `open` reports the draft's
/// next header and payload length.
#[test]
fn open_recovers_draft_plaintext() {
    for c in supported() {
        let n = c.n;
        let mut sa = InboundSa::new(&c.params(Mode::Tunnel, c.esn())).unwrap();
        let mut esp = h(c.packet);
        let seq = if c.checkable() {
            // RFC 4303 §3.4.3: replay check first; with ESN it infers the high half (0 here).
            let seq_low = u32::from_be_bytes(esp[4..8].try_into().unwrap());
            sa.check(seq_low).unwrap()
        } else {
            // ESN with a high half ≠ 0: a fresh window cannot infer it, give it directly.
            c.seq()
        };
        assert_eq!(seq, c.seq(), "case {n}: sequence number");

        let opened = sa
            .open(seq, &mut esp)
            .unwrap_or_else(|e| panic!("case {n}: open failed: {e:?}"));
        let plaintext = h(c.plaintext);
        assert_eq!(opened.offset, HEADER_LEN + IV_LEN, "case {n}: offset");
        assert_eq!(
            &esp[opened.offset..opened.offset + plaintext.len()],
            &plaintext[..],
            "case {n}: plaintext"
        );
        assert_eq!(opened.len, c.payload_len(), "case {n}: payload length");
        assert_eq!(opened.next_header, c.trailer().1, "case {n}: next header");

        sa.commit(seq, opened.len)
            .unwrap_or_else(|e| panic!("case {n}: commit failed: {e:?}"));
        assert_eq!(sa.counters.packets, 1, "case {n}");
        assert_eq!(sa.counters.auth_failures, 0, "case {n}");
        // The same packet again is a replay (RFC 4303 §3.4.3), for both ESN inference paths.
        if c.checkable() {
            assert_eq!(
                sa.check(c.seq() as u32),
                Err(DropReason::ReplayDuplicate),
                "case {n}: replay"
            );
        }
    }
}

/// Encrypt the draft's plaintext with the draft's IV and AAD: ciphertext ‖ ICV is the draft's.
#[test]
fn seal_produces_draft_ciphertext() {
    for c in supported() {
        let aead = c.aead().unwrap();
        let key = GcmKey::new(aead, &c.key_material(aead));
        let mut buf = h(c.plaintext);
        let icv = key.seal(&c.iv(), &h(c.aad), &mut buf);
        buf.extend_from_slice(&icv);
        assert_eq!(buf, h(c.ctext_tag), "case {}", c.n);
    }
}

/// RFC 4303 §3.4.4: one flipped bit anywhere in the ICV, and the packet is refused as
/// `AuthFailed`, counted, and never reaches the padding check.
#[test]
fn flipped_icv_bit_is_auth_failed() {
    for c in supported() {
        let n = c.n;
        let original = h(c.packet);
        let icv_start = original.len() - ICV_LEN;
        for byte in icv_start..original.len() {
            for bit in [0u8, 3, 7] {
                let mut sa = InboundSa::new(&c.params(Mode::Tunnel, c.esn())).unwrap();
                let mut esp = original.clone();
                esp[byte] ^= 1 << bit;
                assert_eq!(
                    sa.open(c.seq(), &mut esp),
                    Err(DropReason::AuthFailed),
                    "case {n}: ICV byte {} bit {bit}",
                    byte - icv_start
                );
                assert_eq!(sa.counters.auth_failures, 1, "case {n}");
                assert_eq!(sa.counters.packets, 0, "case {n}");
            }
        }
    }
}

/// RFC 4106 §5 / RFC 4304: with ESN the high half of the sequence number is authenticated
/// although it is never sent. Opening with a wrong high half, or with the SA's ESN setting
/// wrong (4-byte instead of 8-byte sequence number in the AAD, or the reverse), fails.
#[test]
fn esn_high_half_and_aad_form_are_authenticated() {
    for c in supported() {
        let n = c.n;
        // Wrong ESN setting: the AAD has the wrong form.
        let mut sa = InboundSa::new(&c.params(Mode::Tunnel, !c.esn())).unwrap();
        let mut esp = h(c.packet);
        assert_eq!(
            sa.open(c.seq() & u64::from(u32::MAX), &mut esp),
            Err(DropReason::AuthFailed),
            "case {n}: ESN setting flipped"
        );
        if c.esn() {
            // Wrong high half.
            let mut sa = InboundSa::new(&c.params(Mode::Tunnel, true)).unwrap();
            let mut esp = h(c.packet);
            let wrong = c.seq() ^ (1 << 32);
            assert_eq!(
                sa.open(wrong, &mut esp),
                Err(DropReason::AuthFailed),
                "case {n}: high half"
            );
        }
    }
}

/// Draft Case 7 uses AES-192-GCM. RFC 4106 §8.1 allows 128-, 192- and 256-bit keys, but xdpsec
/// offers only 128 and 256 ([`Aead`]). Our key material refuses the case's 24 + 4 bytes with an
/// error, and an independent AES-192-GCM (RustCrypto) checks the transcription.
#[test]
fn case_7_aes192() {
    let c = &CASES[6];
    assert_eq!(c.n, 7);
    assert_eq!(c.aead(), None);
    let mut km = c.key();
    km.extend_from_slice(&c.salt());
    assert_eq!(km.len(), 28);
    assert!(KeyMaterial::new(Aead::Aes128Gcm16, km.clone()).is_err());
    assert!(KeyMaterial::new(Aead::Aes256Gcm16, km).is_err());

    let cipher = AesGcm::<Aes192, U12>::new_from_slice(&c.key()).unwrap();
    let nonce_bytes = h(c.nonce);
    let nonce = Nonce::<U12>::from_slice(&nonce_bytes);
    let ct = cipher
        .encrypt(
            nonce,
            Payload {
                msg: &h(c.plaintext),
                aad: &h(c.aad),
            },
        )
        .unwrap();
    assert_eq!(ct, h(c.ctext_tag));
}

/// RFC 3948 §2: how each draft packet would be classified on UDP port 4500. Case 4 uses SPI 0,
/// which RFC 4303 §2.1 reserves and which on port 4500 is the non-ESP marker (RFC 3948 §2.2):
/// the packet would be handed to IKE, never to ESP. `InboundSa::new` itself does not check
/// the SPI, so the decryption tests above still cover Case 4. All other SPIs are ≥ 256 and
/// classify as ESP with the low 32 bits of the sequence number.
#[test]
fn classification_on_port_4500() {
    for c in CASES {
        let class = natt::classify(&h(c.packet));
        if c.n == 4 {
            assert_eq!(c.spi(), 0);
            assert_eq!(class, Ok(Class::Ike), "case 4");
        } else {
            assert_eq!(
                class,
                Ok(Class::Esp {
                    spi: c.spi(),
                    seq: c.seq() as u32
                }),
                "case {}",
                c.n
            );
        }
    }
}

/// Every draft case ends with next header 1 (ICMP, IANA), although most payloads are whole
/// IPv4 packets, for which RFC 4303 §2.6 would give 4 (IPv4) in tunnel mode. So the draft's
/// packets decrypt, but a tunnel-mode SA refuses their next header (`BadNextHeader`); a
/// transport-mode SA accepts it. Padding is the default 1, 2, … sequence (RFC 4303 §2.4) in
/// every case, so no case needs the raw `GcmKey::open` fallback.
#[test]
fn draft_next_header_and_padding() {
    for c in CASES {
        let (pad, nh) = c.trailer();
        assert_eq!(nh, 1, "case {}", c.n);
        let p = h(c.plaintext);
        let padding = &p[c.payload_len()..c.payload_len() + pad];
        assert!(
            padding
                .iter()
                .enumerate()
                .all(|(i, &b)| usize::from(b) == i + 1),
            "case {}: padding",
            c.n
        );
    }
    let c = &CASES[1];
    let tunnel = InboundSa::new(&c.params(Mode::Tunnel, false)).unwrap();
    assert_eq!(
        tunnel.accepts_next_header(1),
        Err(DropReason::BadNextHeader)
    );
    let transport = InboundSa::new(&c.params(Mode::Transport, false)).unwrap();
    assert_eq!(transport.accepts_next_header(1), Ok(()));
}

/// Where the payload is an IPv4 packet, its Total Length should equal the payload length the
/// ESP trailer yields (RFC 791 §3.1, RFC 4303 §2). In Cases 1, 6, 7 and 9 it does not: the
/// draft's IPv4 header counts the ESP trailer (and padding) as part of the packet. A receiver
/// that validates the inner packet after decryption would refuse them; the ESP layer is not
/// affected.
#[test]
fn draft_inner_ipv4_total_length() {
    let mut disagree = Vec::new();
    for c in CASES {
        let p = h(c.plaintext);
        if p[0] >> 4 != 4 {
            continue; // Cases 11, 12, 13: not an IP packet.
        }
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        if total != c.payload_len() {
            assert_eq!(total, p.len(), "case {}: counts the trailer", c.n);
            disagree.push(c.n);
        }
    }
    assert_eq!(disagree, [1, 6, 7, 9]);
}
