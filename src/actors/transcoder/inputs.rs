//! What a conversion reads besides the job: the upload copied to a work
//! file, and the cover picture made for the output.

use std::path::Path;

use tokio::io::AsyncWriteExt;

use super::Transcoder;
use super::error::{AttemptError, transient};
use super::ffmpeg::{self, CoverSource, MediaPolicy, Picture, Plan};
use crate::storage::objects::{self, Bucket};
use crate::wire::{AudioOptions, Cover};

impl Transcoder {
    /// Makes an output's cover picture, if its options ask for one, in the
    /// work dir `dir`: with its JPEG's bytes when the format carries it in a
    /// tag. `uploaded` names the picture uploaded with the job, if any.
    pub(super) async fn cover(
        &self,
        options: &AudioOptions,
        uploaded: Option<&str>,
        input: &Path,
        dir: &Path,
        media: &MediaPolicy,
        plan: &Plan,
    ) -> Result<Option<(Picture, Vec<u8>)>, AttemptError> {
        let Some(kind) = options.cover else {
            return Ok(None);
        };
        let copy = dir.join("cover-upload");
        let source = match (kind, uploaded) {
            (Cover::Upload, Some(object)) => {
                self.download(object, &copy).await?;
                CoverSource::Upload(&copy)
            }
            _ => CoverSource::Frame {
                video: input,
                at: options.cover_at,
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
        self.download_from(&self.uploads, object, path).await
    }

    /// Copies an object of `bucket` to a local file, streaming.
    pub(super) async fn download_from(
        &self,
        bucket: &Bucket,
        object: &str,
        path: &std::path::Path,
    ) -> Result<(), AttemptError> {
        let (_, chunks) = match bucket.read(object).await {
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
