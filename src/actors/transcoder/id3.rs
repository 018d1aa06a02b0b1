//! An mp3's comment where players look for it. ffmpeg 5.1's ID3v2.4 writer
//! has no comment frame: it writes the `comment` tag as a user text frame
//! (`TXXX` described `comment`), which players and taggers do not show as
//! the comment. This turns that frame into a `COMM` frame in place: the
//! comment frame is four bytes shorter, so the tag keeps its size, the
//! bytes saved becoming padding, and the audio after it is not moved.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::error::{AttemptError, transient};
use crate::audio::Format;

/// The largest tag rewritten (ours hold at most a cover of 1400 pixels).
const MAX_TAG: usize = 16 << 20;
/// A frame's header: id, size, flags.
const FRAME_HEADER: usize = 10;

/// [`comment_as_comm`] for an output of `format` just written at `path`,
/// off the async threads; other formats have their comment where it goes.
pub(super) async fn place_comment(format: Format, path: &Path) -> Result<(), AttemptError> {
    if format != Format::Mp3 {
        return Ok(());
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || comment_as_comm(&path))
        .await
        .map_err(transient("rewrite the comment"))?
        .map_err(transient("rewrite the comment"))?;
    Ok(())
}

/// Moves the comment of the ID3v2.4 tag at the start of the mp3 at `path`
/// into a `COMM` frame; says whether it did. A file without such a tag, or
/// one laid out in a way ffmpeg does not write, is left as it is.
pub fn comment_as_comm(path: &Path) -> std::io::Result<bool> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let mut header = [0u8; 10];
    if file.read_exact(&mut header).is_err() {
        return Ok(false);
    }
    // Version 2.4, without unsynchronisation or an extended header.
    if &header[..4] != b"ID3\x04" || header[5] & 0xC0 != 0 {
        return Ok(false);
    }
    let Some(size) = syncsafe(&header[6..10]).filter(|size| *size <= MAX_TAG) else {
        return Ok(false);
    };
    let mut tag = vec![0u8; size];
    file.read_exact(&mut tag)?;
    let Some(rewritten) = rewrite(&tag) else {
        return Ok(false);
    };
    file.seek(SeekFrom::Start(header.len() as u64))?;
    file.write_all(&rewritten)?;
    Ok(true)
}

/// The frames of `tag` with its comment as a `COMM` frame, padded to the
/// same length; `None` when there is nothing to change.
fn rewrite(tag: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(tag.len());
    let mut changed = false;
    let mut at = 0;
    // Padding (zeros) may follow the last frame.
    while at + FRAME_HEADER <= tag.len() && tag[at] != 0 {
        let size = syncsafe(&tag[at + 4..at + 8])?;
        let end = at.checked_add(FRAME_HEADER)?.checked_add(size)?;
        let frame = tag.get(at..end)?;
        let (id, flags, body) = (&frame[..4], &frame[8..10], &frame[FRAME_HEADER..]);
        match comment(body).filter(|_| id == b"TXXX" && flags == [0, 0] && !changed) {
            Some(comm) => {
                out.extend_from_slice(b"COMM");
                out.extend_from_slice(&to_syncsafe(comm.len())?);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&comm);
                changed = true;
            }
            None => out.extend_from_slice(frame),
        }
        at = end;
    }
    if !changed || out.len() > tag.len() {
        return None;
    }
    out.resize(tag.len(), 0);
    Some(out)
}

/// The body of a `COMM` frame saying what the body of a `TXXX` frame
/// described `comment` says; `None` for any other frame body. Only
/// encodings with one-byte terminators (Latin-1, UTF-8) are read, which
/// ffmpeg's v2.4 writer uses.
fn comment(body: &[u8]) -> Option<Vec<u8>> {
    let (&encoding, rest) = body.split_first()?;
    if encoding != 0 && encoding != 3 {
        return None;
    }
    let text = rest.strip_prefix(b"comment\0")?;
    let text = text.strip_suffix(b"\0").unwrap_or(text);
    // Encoding, language ("und": undetermined), an empty description.
    let mut comm = vec![encoding];
    comm.extend_from_slice(b"und\0");
    comm.extend_from_slice(text);
    Some(comm)
}

/// A 28-bit size stored seven bits to a byte.
fn syncsafe(bytes: &[u8]) -> Option<usize> {
    bytes.iter().try_fold(0usize, |size, &byte| {
        (byte < 0x80).then_some((size << 7) | usize::from(byte))
    })
}

fn to_syncsafe(size: usize) -> Option<[u8; 4]> {
    (size < 1 << 28).then(|| {
        let byte = |shift: usize| ((size >> shift) & 0x7F) as u8;
        [byte(21), byte(14), byte(7), byte(0)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut frame = id.to_vec();
        frame.extend_from_slice(&to_syncsafe(body.len()).unwrap());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(body);
        frame
    }

    #[test]
    fn the_comment_frame_replaces_the_user_text_frame_in_the_same_room() {
        let title = frame(b"TIT2", b"\x03Talk\0");
        let mut tag = frame(b"TXXX", b"\x03comment\0Two\nlines\0");
        tag.extend_from_slice(&title);
        tag.extend_from_slice(&[0; 6]);
        let rewritten = rewrite(&tag).unwrap();
        assert_eq!(rewritten.len(), tag.len());
        let mut expected = frame(b"COMM", b"\x03und\0Two\nlines");
        expected.extend_from_slice(&title);
        expected.resize(tag.len(), 0);
        assert_eq!(rewritten, expected);
    }

    #[test]
    fn tags_without_a_comment_or_with_broken_frames_are_left_alone() {
        let other = frame(b"TXXX", b"\x03mood\0calm\0");
        assert_eq!(rewrite(&other), None);
        let mut broken = frame(b"TXXX", b"\x03comment\0x\0");
        broken[7] = 0x7F;
        assert_eq!(rewrite(&broken), None);
        assert_eq!(syncsafe(&[0, 0, 0x81, 0]), None);
        assert_eq!(to_syncsafe(300).and_then(|s| syncsafe(&s)), Some(300));
    }
}
