//! The classic libpcap file format (not pcapng): a 24-byte file header, then records of a
//! 16-byte header and the captured bytes. Either byte order, micro- or nanosecond timestamps.
//! Pure functions over byte buffers.

/// Ethernet frames.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Raw IPv4/IPv6 packets.
pub const LINKTYPE_RAW: u32 = 101;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
/// Largest record accepted: bigger claims are corrupt files, not packets.
const MAX_RECORD: usize = 256 * 1024;

/// What the file header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// LINKTYPE_* value.
    pub linktype: u32,
    /// Snapshot length.
    pub snaplen: u32,
    /// Timestamps in nanoseconds (else microseconds).
    pub nanos: bool,
}

/// One captured packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Seconds since the epoch.
    pub ts_sec: u32,
    /// Micro- or nanoseconds (see [`FileHeader::nanos`]).
    pub ts_frac: u32,
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// A malformed capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reader over a whole capture held in memory.
#[derive(Debug)]
pub struct Reader<'a> {
    header: FileHeader,
    swapped: bool,
    rest: &'a [u8],
    index: usize,
}

impl<'a> Reader<'a> {
    /// Parse the file header.
    pub fn new(bytes: &'a [u8]) -> Result<Self, FormatError> {
        let Some(h) = bytes.get(..FILE_HEADER_LEN) else {
            return Err(FormatError(
                "not a pcap file: shorter than its header".into(),
            ));
        };
        let magic_le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let magic_be = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (swapped, nanos) = match (magic_le, magic_be) {
            (MAGIC_MICROS, _) => (false, false),
            (MAGIC_NANOS, _) => (false, true),
            (_, MAGIC_MICROS) => (true, false),
            (_, MAGIC_NANOS) => (true, true),
            _ => {
                return Err(FormatError(
                    "not a classic pcap file (pcapng? convert with editcap -F pcap)".into(),
                ));
            }
        };
        let r = Self {
            header: FileHeader {
                linktype: 0,
                snaplen: 0,
                nanos,
            },
            swapped,
            rest: &bytes[FILE_HEADER_LEN..],
            index: 0,
        };
        let header = FileHeader {
            linktype: r.u32_at(h, 20),
            snaplen: r.u32_at(h, 16),
            nanos,
        };
        Ok(Self { header, ..r })
    }

    /// The file header.
    pub fn header(&self) -> FileHeader {
        self.header
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let raw = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.swapped {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    }

    /// The next record, `None` at the end, or an error for a truncated/corrupt record.
    pub fn next_record(&mut self) -> Option<Result<Record<'a>, FormatError>> {
        if self.rest.is_empty() {
            return None;
        }
        self.index += 1;
        let Some(h) = self.rest.get(..RECORD_HEADER_LEN) else {
            self.rest = &[];
            return Some(Err(FormatError(format!(
                "record {}: truncated header",
                self.index
            ))));
        };
        let (ts_sec, ts_frac) = (self.u32_at(h, 0), self.u32_at(h, 4));
        let (incl, orig_len) = (self.u32_at(h, 8) as usize, self.u32_at(h, 12));
        let end = RECORD_HEADER_LEN + incl;
        if incl > MAX_RECORD {
            self.rest = &[];
            return Some(Err(FormatError(format!(
                "record {}: length {incl} is implausible",
                self.index
            ))));
        }
        let Some(data) = self.rest.get(RECORD_HEADER_LEN..end) else {
            self.rest = &[];
            return Some(Err(FormatError(format!(
                "record {}: truncated data",
                self.index
            ))));
        };
        self.rest = &self.rest[end..];
        Some(Ok(Record {
            ts_sec,
            ts_frac,
            orig_len,
            data,
        }))
    }
}

/// Append a little-endian file header.
pub fn write_header(out: &mut Vec<u8>, h: &FileHeader) {
    let magic = if h.nanos { MAGIC_NANOS } else { MAGIC_MICROS };
    out.extend_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&h.snaplen.max(65535).to_le_bytes());
    out.extend_from_slice(&h.linktype.to_le_bytes());
}

/// Append a record holding `data`, with the timestamps of `like`. The original length is
/// `data.len()` unless the input record was itself truncated by its snaplen.
pub fn write_record(out: &mut Vec<u8>, like: &Record<'_>, data: &[u8]) {
    let truncated = (like.orig_len as usize).saturating_sub(like.data.len());
    let len = data.len() as u32;
    out.extend_from_slice(&like.ts_sec.to_le_bytes());
    out.extend_from_slice(&like.ts_frac.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(len + truncated as u32).to_le_bytes());
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let mut out = Vec::new();
        let h = FileHeader {
            linktype: LINKTYPE_RAW,
            snaplen: 65535,
            nanos: true,
        };
        write_header(&mut out, &h);
        let rec = Record {
            ts_sec: 7,
            ts_frac: 9,
            orig_len: 3,
            data: &[1, 2, 3],
        };
        write_record(&mut out, &rec, &[4, 5]);
        let mut r = Reader::new(&out).unwrap();
        assert_eq!(r.header(), h);
        let got = r.next_record().unwrap().unwrap();
        assert_eq!(
            (got.ts_sec, got.ts_frac, got.orig_len, got.data),
            (7, 9, 2, &[4u8, 5][..])
        );
        assert!(r.next_record().is_none());

        assert!(Reader::new(&[0; 10]).is_err());
        assert!(Reader::new(&[0; 24]).is_err());
        out.truncate(out.len() - 1);
        let mut r = Reader::new(&out).unwrap();
        assert!(r.next_record().unwrap().is_err());
        assert!(r.next_record().is_none());
    }

    #[test]
    fn reads_big_endian_files() {
        let mut b = vec![
            0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0,
            1,
        ];
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0xaa]);
        let mut r = Reader::new(&b).unwrap();
        assert_eq!(r.header().linktype, LINKTYPE_ETHERNET);
        assert_eq!(r.next_record().unwrap().unwrap().data, &[0xaa]);
    }
}
