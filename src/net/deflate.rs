//! COMPRESS=DEFLATE (RFC 4978) for a connection: raw deflate (RFC 1951,
//! no zlib header) in both directions, one stream each way for the rest
//! of the connection. What the peer sends is inflated into the
//! connection's read buffer as it arrives; what we write is deflated
//! into `out` and written from there, and a flush ends with a sync flush
//! so the peer can decode everything sent so far (section 4).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;

/// Most bytes one read of compressed input may inflate to: a peer cannot
/// make the server buffer more than this per read (a "zip bomb").
const MAX_INFLATED_PER_READ: usize = 4 * 1024 * 1024;

pub(super) struct Deflate {
    inflate: Decompress,
    deflate: Compress,
    /// Compressed input as read, inflated at once.
    pub(super) raw: Vec<u8>,
    /// Compressed output not yet written.
    pub(super) out: Vec<u8>,
    /// Bytes deflated since the last sync flush.
    pending: bool,
}

fn corrupt(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("deflate: {e}"))
}

impl Deflate {
    pub(super) fn new() -> Deflate {
        Deflate {
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::default(), false),
            raw: Vec::with_capacity(16 * 1024),
            out: Vec::new(),
            pending: false,
        }
    }

    /// Inflates `input` onto the end of `into`.
    pub(super) fn inflate(&mut self, mut input: &[u8], into: &mut Vec<u8>) -> io::Result<()> {
        let start = into.len();
        loop {
            into.reserve(input.len().saturating_mul(4).max(16 * 1024));
            let (in_before, out_before) = (self.inflate.total_in(), into.len());
            let status = self
                .inflate
                .decompress_vec(input, into, FlushDecompress::Sync)
                .map_err(corrupt)?;
            let used = usize::try_from(self.inflate.total_in() - in_before).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            if into.len() - start > MAX_INFLATED_PER_READ {
                return Err(corrupt("input inflates too far"));
            }
            let full = into.len() == into.capacity();
            if status == Status::StreamEnd || (input.is_empty() && !full) {
                return Ok(());
            }
            if used == 0 && into.len() == out_before && !full {
                return Err(corrupt("no progress"));
            }
        }
    }

    /// Deflates `input` onto `out`; with `sync`, ends with a sync flush.
    pub(super) fn deflate(&mut self, mut input: &[u8], sync: bool) -> io::Result<()> {
        if input.is_empty() && !(sync && self.pending) {
            return Ok(());
        }
        let flush = if sync {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        loop {
            self.out.reserve(input.len() / 2 + 1024);
            let in_before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut self.out, flush)
                .map_err(corrupt)?;
            let used = usize::try_from(self.deflate.total_in() - in_before).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            if input.is_empty() && self.out.len() < self.out.capacity() {
                break;
            }
        }
        self.pending = !sync;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_round_trip_with_sync_flushes() {
        let mut ours = Deflate::new();
        let mut theirs = Deflate::new();
        let text = b"* 1 FETCH (BODY[] {11}\r\nhello world)\r\n".repeat(500);
        ours.deflate(&text[..7000], false).unwrap();
        ours.deflate(&text[7000..], true).unwrap();
        assert!(ours.out.len() < text.len() / 10);
        let mut got = Vec::new();
        // Fed in small pieces, as reads deliver it.
        for piece in ours.out.chunks(100) {
            theirs.inflate(piece, &mut got).unwrap();
        }
        assert_eq!(got, text);
        // Nothing new: a flush adds nothing.
        let before = ours.out.len();
        ours.deflate(&[], true).unwrap();
        assert_eq!(ours.out.len(), before);
        assert!(theirs.inflate(b"\xff\xff\xff\xff", &mut got).is_err());
    }
}
