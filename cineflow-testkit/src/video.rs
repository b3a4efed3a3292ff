//! The bytes each job serves: deterministic pseudo-random data behind a valid-looking MP4
//! header, seeded by the job id, addressable at any offset (for ranges and streaming).
//!
//! Layout: a 32-byte `ftyp` box (`isom`, minor version 0x200, brands `isom iso2 avc1 mp41`),
//! then an `mdat` box header whose size covers the rest of the file, then random bytes.
//! Bytes 4..8 are therefore `ftyp`. Files shorter than 40 bytes hold a prefix of that header.

use sha2::{Digest, Sha256};

/// Bytes generated per step; streams yield chunks aligned on this.
pub(crate) const CHUNK: u64 = 64 * 1024;

/// Length of the `ftyp` box plus the `mdat` box header.
const HEADER_LEN: u64 = 40;

/// The whole video of `job_id` when it is `len` bytes long (what the server serves for it).
pub fn video_bytes(job_id: &str, len: u64) -> Vec<u8> {
    let mut out = vec![0; usize::try_from(len).unwrap_or(usize::MAX)];
    fill(seed(job_id), len, 0, &mut out);
    out
}

/// The lowercase hex sha256 of [`video_bytes`]`(job_id, len)`, computed chunk by chunk.
pub fn video_sha256(job_id: &str, len: u64) -> String {
    let seed = seed(job_id);
    let mut hasher = Sha256::new();
    let mut buf = vec![0; usize::try_from(CHUNK.min(len)).unwrap_or(0)];
    let mut pos = 0;
    while pos < len {
        let n = CHUNK.min(len - pos);
        let part = &mut buf[..usize::try_from(n).unwrap_or(0)];
        fill(seed, len, pos, part);
        hasher.update(&*part);
        pos += n;
    }
    hex(&hasher.finalize())
}

/// Lowercase hex.
/// The frame size (`1280x720`) of a video at an aspect ratio (`16:9`, `9:16`, `1:1`; others
/// render landscape) and a resolution (`480p`, `720p`, `1080p`, `4k`; portrait and square stop
/// at 1080p), for the gateways' fakes, which echo no size of their own.
pub(crate) fn frame_size(ratio: &str, resolution: &str) -> String {
    let (w, h) = match (ratio, resolution) {
        ("9:16", "1080p" | "4k") => (1080, 1920),
        ("9:16", _) => (720, 1280),
        ("1:1", _) => (720, 720),
        (_, "1080p") => (1920, 1080),
        (_, "4k") => (3840, 2160),
        (_, "480p") => (854, 480),
        _ => (1280, 720),
    };
    format!("{w}x{h}")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The seed of a job's bytes: FNV-1a of its id.
pub(crate) fn seed(job_id: &str) -> u64 {
    job_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Fills `out` with the bytes at `offset..offset + out.len()` of a `total`-byte video.
pub(crate) fn fill(seed: u64, total: u64, offset: u64, out: &mut [u8]) {
    let mut done = 0usize;
    let mut chunk_buf = Vec::new();
    while done < out.len() {
        let pos = offset + done as u64;
        let index = pos / CHUNK;
        let within = usize::try_from(pos % CHUNK).unwrap_or(0);
        let n = (out.len() - done).min(usize::try_from(CHUNK).unwrap_or(0) - within);
        chunk_buf.resize(usize::try_from(CHUNK).unwrap_or(0), 0);
        let mut rng = fastrand::Rng::with_seed(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.fill(&mut chunk_buf[..within + n]);
        out[done..done + n].copy_from_slice(&chunk_buf[within..within + n]);
        done += n;
    }
    // Overlay the header on whatever part of the first 40 bytes was asked for.
    if offset < HEADER_LEN {
        let header = header(total);
        let end = HEADER_LEN.min(offset + out.len() as u64);
        for p in offset..end {
            let (src, dst) = (
                usize::try_from(p).unwrap_or(0),
                usize::try_from(p - offset).unwrap_or(0),
            );
            out[dst] = header[src];
        }
    }
}

fn header(total: u64) -> [u8; 40] {
    let mut h = [0u8; 40];
    h[0..4].copy_from_slice(&32u32.to_be_bytes());
    h[4..8].copy_from_slice(b"ftyp");
    h[8..12].copy_from_slice(b"isom");
    h[12..16].copy_from_slice(&0x200u32.to_be_bytes());
    h[16..32].copy_from_slice(b"isomiso2avc1mp41");
    let mdat = u32::try_from(total.saturating_sub(32)).unwrap_or(1);
    h[32..36].copy_from_slice(&mdat.to_be_bytes());
    h[36..40].copy_from_slice(b"mdat");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn videos_start_with_ftyp_and_are_deterministic() {
        let a = video_bytes("video_1", 200_000);
        assert_eq!(&a[4..8], b"ftyp");
        assert_eq!(&a[36..40], b"mdat");
        assert_eq!(a, video_bytes("video_1", 200_000));
        assert_ne!(a, video_bytes("video_2", 200_000));
        assert_eq!(video_sha256("video_1", 200_000), hex(&Sha256::digest(&a)));
    }

    #[test]
    fn any_window_matches_the_whole_file() {
        let whole = video_bytes("x", 150_000);
        for (off, len) in [(0u64, 10usize), (5, 100), (65_530, 20), (131_000, 19_000)] {
            let mut part = vec![0; len];
            fill(seed("x"), 150_000, off, &mut part);
            let off = usize::try_from(off).unwrap();
            assert_eq!(part, whole[off..off + len], "{off}+{len}");
        }
        assert_eq!(video_bytes("x", 6), whole[..6].to_vec());
    }
}
