//! Which uploads can be converted while they arrive, told from their first
//! bytes: containers ffmpeg reads front to back without seeking. An MP4 or
//! MOV qualifies only when its index (`moov`) comes before the media
//! (`mdat`); most cameras write it last, and ffmpeg must then have the end
//! of the file before it can begin.

/// Whether an upload that begins with `head` can be read as a stream.
pub fn streamable(head: &[u8]) -> bool {
    let riff_wave = head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE";
    // Three packets in a row start with the sync byte.
    let mpeg_ts = head.len() >= 3 * 188 && (0..3).all(|i| head[i * 188] == 0x47);
    head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
        || head.starts_with(b"OggS")
        || head.starts_with(b"fLaC")
        || riff_wave
        || mpeg_ts
        || index_first(head)
}

/// Whether the top-level boxes of an ISO media file, as far as `head`
/// holds them, reach `moov` before `mdat`. Anything that is not such a file,
/// or a head that ends first, is not.
fn index_first(head: &[u8]) -> bool {
    let mut at = 0usize;
    let mut first = true;
    while let Some(header) = head.get(at..at + 8) {
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = &header[4..8];
        if first && kind != b"ftyp" {
            return false;
        }
        first = false;
        match kind {
            b"moov" => return true,
            b"mdat" | b"moof" => return false,
            _ => {}
        }
        let size = match size {
            // A 64-bit size follows the type.
            1 => match head.get(at + 8..at + 16) {
                Some(large) => {
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(large);
                    u64::from_be_bytes(bytes)
                }
                None => return false,
            },
            // 0: the box runs to the end of the file; smaller than its own
            // header: not a valid box.
            0..8 => return false,
            size => u64::from(size),
        };
        let Some(next) = usize::try_from(size)
            .ok()
            .and_then(|size| at.checked_add(size))
        else {
            return false;
        };
        at = next;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso_box(kind: &[u8; 4], body: usize) -> Vec<u8> {
        let mut b = ((8 + body) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend(std::iter::repeat_n(0u8, body));
        b
    }

    #[test]
    fn containers_read_front_to_back_are_streamable() {
        assert!(streamable(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]));
        assert!(streamable(b"OggS\0\x02"));
        assert!(streamable(b"fLaC\0\0\0\x22"));
        assert!(streamable(b"RIFF\x24\0\0\0WAVEfmt "));
        let mut ts = vec![0u8; 3 * 188];
        for i in 0..3 {
            ts[i * 188] = 0x47;
        }
        assert!(streamable(&ts));
    }

    #[test]
    fn an_mp4_is_streamable_only_with_its_index_first() {
        let ftyp = iso_box(b"ftyp", 24);
        let index_first = [ftyp.clone(), iso_box(b"free", 0), iso_box(b"moov", 100)].concat();
        assert!(streamable(&index_first));
        let index_last = [ftyp.clone(), iso_box(b"mdat", 1000)].concat();
        assert!(!streamable(&index_last));
        // The head ends before either box: not known, so not streamed.
        let cut = [ftyp.clone(), iso_box(b"free", 5000)].concat();
        assert!(!streamable(&cut[..200]));
        // Fragments without an index first, sizes that loop or overflow.
        assert!(!streamable(&[ftyp.clone(), iso_box(b"moof", 10)].concat()));
        let mut zero = ftyp.clone();
        zero.extend_from_slice(&[0, 0, 0, 4, b'f', b'r', b'e', b'e']);
        assert!(!streamable(&zero));
        let mut huge = ftyp.clone();
        huge.extend_from_slice(&[0, 0, 0, 1, b'f', b'r', b'e', b'e']);
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(!streamable(&huge));
        // Not an ISO file at all.
        assert!(!streamable(&iso_box(b"moov", 10)));
        assert!(!streamable(b"GIF89a"));
        assert!(!streamable(b""));
    }
}
