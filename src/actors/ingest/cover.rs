//! A cover picture uploaded with a job: bounded as it is read, refused
//! unless it is a JPEG or a PNG of a sane size, and kept in the uploads
//! bucket next to the upload until the job ends. The transcoder decodes it
//! with ffmpeg under the media policy before it is embedded.

use super::Ingest;
use super::error::ApiError;
use crate::domain::JobId;
use crate::storage::objects;

/// Largest cover picture accepted, in bytes.
pub(super) const MAX_COVER_BYTES: usize = 8 << 20;

/// Largest side of a PNG cover, read from its header: a small file may
/// inflate to gigabytes of pixels.
const MAX_PNG_SIDE: u32 = 8192;

fn refused(message: String) -> ApiError {
    ApiError::BadRequest("invalid_cover", message)
}

/// Refuses bytes that are not a JPEG or a PNG picture, and PNGs whose
/// header says they are too large.
pub(super) fn check_picture(bytes: &[u8]) -> Result<(), ApiError> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(());
    }
    if !bytes.starts_with(PNG) {
        return Err(refused("the cover must be a JPEG or PNG picture".into()));
    }
    // The first chunk is IHDR: its width and height follow the signature,
    // the chunk's length and its type.
    let side = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    };
    match (bytes.get(12..16), side(16), side(20)) {
        (Some(b"IHDR"), Some(width), Some(height))
            if width <= MAX_PNG_SIDE && height <= MAX_PNG_SIDE =>
        {
            Ok(())
        }
        (Some(b"IHDR"), Some(width), Some(height)) => Err(refused(format!(
            "the cover is {width}×{height} pixels; at most {MAX_PNG_SIDE} on a side are accepted"
        ))),
        _ => Err(refused("the cover is not a readable PNG picture".into())),
    }
}

impl Ingest {
    /// Stores job `job_id`'s cover picture.
    pub(super) async fn store_cover(&self, job_id: &JobId, bytes: Vec<u8>) -> Result<(), ApiError> {
        let name = crate::wire::cover_object(job_id.as_str());
        objects::put_object(
            &self.uploads,
            &name,
            std::io::Cursor::new(bytes),
            self.chunk_size,
            Default::default(),
        )
        .await
        .map_err(|err| ApiError::unavailable("the object store", err))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        bytes.extend(width.to_be_bytes());
        bytes.extend(height.to_be_bytes());
        bytes
    }

    #[test]
    fn only_jpegs_and_pngs_of_a_sane_size_pass() {
        assert!(check_picture(&[0xFF, 0xD8, 0xFF, 0xE0]).is_ok());
        assert!(check_picture(&png(1400, 1400)).is_ok());
        assert!(check_picture(&png(20000, 20000)).is_err());
        assert!(check_picture(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>").is_err());
        assert!(check_picture(b"hello, I am a .jpg").is_err());
        assert!(check_picture(b"\x89PNG\r\n\x1a\n").is_err());
    }
}
