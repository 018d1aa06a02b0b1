//! What a conversion reads besides the job: the upload copied to a work
//! file, and the cover picture made for the output.

use std::path::Path;

use tokio::io::AsyncWriteExt;

use super::Transcoder;
use super::error::{AttemptError, transient};
use super::ffmpeg::{self, CoverSource, MediaPolicy, Picture, Plan};
use crate::storage::objects;
use crate::wire::{Cover, Job};

impl Transcoder {
    /// Makes the job's cover picture, if it asks for one, in the work dir
    /// `dir`: with its JPEG's bytes when the format carries it in a tag.
    pub(super) async fn cover(
        &self,
        job: &Job,
        input: &Path,
        dir: &Path,
        media: &MediaPolicy,
        plan: &Plan,
    ) -> Result<Option<(Picture, Vec<u8>)>, AttemptError> {
        let Some(kind) = job.options.cover else {
            return Ok(None);
        };
        let uploaded = dir.join("cover-upload");
        let source = match (kind, job.cover_object()) {
            (Cover::Upload, Some(object)) => {
                self.download(&object, &uploaded).await?;
                CoverSource::Upload(&uploaded)
            }
            _ => CoverSource::Frame {
                video: input,
                at: job.options.cover_at,
            },
        };
        let picture =
            ffmpeg::make_cover(media, source, &dir.join("cover.jpg"), plan.cover_limit()).await?;
        let bytes = if plan.attaches_picture() {
            Vec::new()
        } else {
            tokio::fs::read(&picture.path)
                .await
                .map_err(transient("read the cover"))?
        };
        Ok(Some((picture, bytes)))
    }

    /// Copies the upload to a local file, streaming.
    pub(super) async fn download(
        &self,
        object: &str,
        path: &std::path::Path,
    ) -> Result<(), AttemptError> {
        let (_, chunks) = match self.uploads.read(object).await {
            Ok(object) => object,
            Err(objects::ReadError::NotFound) => {
                return Err(AttemptError::Rejected(
                    "the upload is gone (it expired or was deleted)".into(),
                ));
            }
            Err(err) => return Err(transient("read the upload")(err)),
        };
        let mut object = tokio_util::io::StreamReader::new(objects::read_ahead(chunks, 2));
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(transient("create the input file"))?;
        tokio::io::copy(&mut object, &mut file)
            .await
            .map_err(transient("read the upload"))?;
        file.flush()
            .await
            .map_err(transient("write the input file"))?;
        Ok(())
    }
}
