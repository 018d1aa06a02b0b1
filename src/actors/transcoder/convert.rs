//! A job's conversion: the upload to a work file (or, for a job queued
//! while its upload arrives, through a pipe into ffmpeg as it comes), then
//! each of the job's outputs in turn (`output.rs`), sharing the room the
//! owner's quota leaves; what an earlier delivery stored is used again;
//! last, the first output's waveform.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use super::error::{AttemptError, transient};
use super::ffmpeg;
use super::ownership::Stops;
use super::pass::Watch;
use super::{OUTPUT_DURATION, OUTPUT_LOUDNESS, OUTPUT_TRACKS, Transcoder, feed};
use crate::audio::LoudnessReport;
use crate::storage::objects;
use crate::wire::{
    Cover, Job, Output, OutputSpec, Track, Waveform, artwork_object, output_object,
    waveform_objects,
};

/// How long a followed upload may go without a new chunk before it is taken
/// to have broken off. Ingest cancels the job of an upload that fails at
/// once; this is for an Ingest that died mid-upload.
pub(super) const UPLOAD_IDLE: Duration = Duration::from_secs(60);

/// Where one output goes: its object, and what its download is called.
pub(super) struct Target {
    /// Its place among the job's outputs.
    pub n: usize,
    pub spec: OutputSpec,
    pub object: String,
    pub filename: String,
}

impl Target {
    /// The job's outputs. The first keeps the name a job with one output
    /// has always had; a later one whose extension an earlier one has is
    /// told apart by its number.
    fn all(job: &Job, stem: &str) -> Vec<Target> {
        let specs: Vec<OutputSpec> = job.specs().collect();
        specs
            .iter()
            .enumerate()
            .map(|(n, spec)| {
                let ext = spec.extension();
                let repeated = specs[..n].iter().any(|s| s.extension() == ext);
                Target {
                    n,
                    spec: spec.clone(),
                    object: output_object(job.id.as_str(), n, spec),
                    filename: match repeated {
                        false => format!("{stem}.{ext}"),
                        true => format!("{stem}-{n}.{ext}"),
                    },
                }
            })
            .collect()
    }

    pub fn output(
        &self,
        bytes: u64,
        duration_seconds: f64,
        loudness: Option<LoudnessReport>,
        tracks: Vec<Track>,
    ) -> Output {
        Output {
            object: self.object.clone(),
            bytes,
            content_type: self.spec.content_type().to_string(),
            filename: self.filename.clone(),
            duration_seconds,
            loudness,
            tracks,
        }
    }

    /// How many ffmpeg passes the output takes, as progress counts them: a
    /// normalized one is measured first, and a split one's tracks count as
    /// one more.
    pub fn passes(&self) -> usize {
        1 + usize::from(self.spec.options.loudness.is_some())
            + usize::from(self.spec.options.split.is_some())
    }
}

/// What a conversion made: the audio of each output, in order, the first
/// one's waveform if it could be made, and the size of its cover picture
/// if it has one.
pub(super) struct Made {
    pub outputs: Vec<Output>,
    pub waveform: Option<Waveform>,
    pub artwork: Option<u64>,
}

/// What every output of the job reads: the upload's work file, the work
/// dir, the upload's name without its extension (the title a single pass
/// starts with), and the cover picture uploaded with the job.
pub(super) struct Work {
    pub input: PathBuf,
    pub dir: PathBuf,
    pub stem: String,
    pub cover_object: Option<String>,
}

impl Transcoder {
    /// Makes every output the job asks for, in order, and the first one's
    /// waveform. What an earlier delivery stored is not made again.
    pub(super) async fn convert(
        &self,
        job: &mut Job,
        revision: &mut Option<u64>,
        interrupt: &CancellationToken,
        stops: &Stops,
    ) -> Result<Made, AttemptError> {
        let stem = job
            .filename
            .rsplit_once('.')
            .map_or(job.filename.as_str(), |(stem, _)| stem)
            .to_string();
        let targets = Target::all(job, &stem);
        let mut made = Vec::with_capacity(targets.len());
        for target in &targets {
            made.push(self.stored(target).await);
        }
        let dir = ffmpeg::work_dir(&self.work_root, job.id.as_str());
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(transient("create the work dir"))?;
        let work = Work {
            input: dir.join("input"),
            dir,
            stem,
            cover_object: job.cover_object(),
        };
        if made.iter().any(Option::is_none) {
            self.make_all(job, revision, interrupt, stops, &targets, &mut made, &work)
                .await?;
        }
        let outputs: Vec<Output> = made.into_iter().flatten().collect();
        let waveform = match outputs.first() {
            Some(first) => self.waveform(job, &targets[0], first, &work).await,
            None => None,
        };
        let artwork = match targets.first().and_then(|t| t.spec.options.cover) {
            Some(_) => {
                let object = artwork_object(job.id.as_str());
                self.outputs
                    .info(&object)
                    .await
                    .ok()
                    .map(|info| info.size as u64)
            }
            None => None,
        };
        Ok(Made {
            outputs,
            waveform,
            artwork,
        })
    }

    /// Makes the outputs not yet `made`, from the upload read once.
    #[allow(clippy::too_many_arguments)]
    async fn make_all(
        &self,
        job: &mut Job,
        revision: &mut Option<u64>,
        interrupt: &CancellationToken,
        stops: &Stops,
        targets: &[Target],
        made: &mut [Option<Output>],
        work: &Work,
    ) -> Result<(), AttemptError> {
        let phase = Instant::now();
        // A cover taken from a frame needs the whole upload: a job queued
        // while its upload arrives then waits for all of it rather than
        // encode from the pipe. So does a job with several outputs: the
        // later ones read the work file the first one's pass writes.
        let mut fed = None;
        let mut streamed = job.streamed_from.clone();
        let frame = targets
            .iter()
            .any(|t| t.spec.options.cover == Some(Cover::Frame));
        if let Some(nuid) = streamed.take_if(|_| frame) {
            fed = Some(
                self.fetch_whole(job, &nuid, &work.input, stops, interrupt)
                    .await?,
            );
        }
        if streamed.is_none() && fed.is_none() {
            // ffmpeg needs a seekable file for containers such as MP4.
            self.download(job.upload_object(), &work.input).await?;
            tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "upload copied");
        }
        let total: usize = targets
            .iter()
            .zip(made.iter())
            .filter(|(_, made)| made.is_none())
            .map(|(target, _)| target.passes())
            .sum();
        let mut room = job.max_output_bytes;
        let mut passes_done = 0;
        let mut watch = Watch {
            job,
            revision,
            interrupt,
            stops,
        };
        for (target, made) in targets.iter().zip(made.iter_mut()) {
            if made.is_none() {
                // The job may make no more audio than its owner's quota has
                // room for, all its outputs together.
                let mut media = self.media.clone();
                if let Some(left) = room {
                    media.max_output_bytes = media.max_output_bytes.min(left.max(1));
                }
                let passes = (passes_done, total);
                let (output, size) = self
                    .make(&mut watch, target, work, &media, streamed.take(), passes)
                    .instrument(tracing::info_span!("output", n = target.n))
                    .await?;
                if size.is_some() {
                    fed = size;
                }
                passes_done += target.passes();
                *made = Some(output);
            }
            if let (Some(left), Some(output)) = (room.as_mut(), made.as_ref()) {
                *left = left.saturating_sub(output.bytes);
            }
        }
        if let Some(size) = fed {
            watch.job.input_bytes = size;
        }
        Ok(())
    }

    /// The output an earlier delivery stored and then died before recording.
    /// The object exists only once it was stored whole, and carries its
    /// duration: it is used rather than encoded again.
    async fn stored(&self, target: &Target) -> Option<Output> {
        let info = self.outputs.info(&target.object).await.ok()?;
        let duration = info.metadata.get(OUTPUT_DURATION)?.parse::<f64>().ok()?;
        tracing::info!(
            output = target.n,
            "the audio is already stored; not encoding again"
        );
        let loudness = info
            .metadata
            .get(OUTPUT_LOUDNESS)
            .and_then(|report| serde_json::from_str(report).ok());
        let tracks = match target.spec.options.split {
            Some(_) => serde_json::from_str(info.metadata.get(OUTPUT_TRACKS)?).ok()?,
            None => Vec::new(),
        };
        Some(target.output(info.size as u64, duration, loudness, tracks))
    }

    /// Copies a followed upload whole into the work file before any pass
    /// starts; returns its size.
    async fn fetch_whole(
        &self,
        job: &Job,
        nuid: &str,
        input: &Path,
        stops: &Stops,
        interrupt: &CancellationToken,
    ) -> Result<u64, AttemptError> {
        let chunks = self.uploads.follow(job.upload_object(), nuid, UPLOAD_IDLE);
        let (reader, writer) = std::io::pipe().map_err(transient("make a pipe"))?;
        drop(reader);
        let feed = feed::feed(objects::read_ahead(chunks, 2), input.to_path_buf(), writer);
        // Dropped with the attempt, the feeding stops too.
        let feeding = AbortOnDropHandle::new(tokio::spawn(feed));
        let done = tokio::select! {
            done = feeding => done,
            _ = stops.canceled.cancelled() => return Err(AttemptError::Canceled),
            _ = stops.superseded.cancelled() => return Err(AttemptError::Superseded),
            _ = interrupt.cancelled() => return Err(AttemptError::Interrupted),
        };
        feed::outcome(done)
    }

    /// The waveform of the job's first output: stored already by an earlier
    /// delivery, or made from its audio and stored. A waveform that cannot
    /// be made leaves the job without one; its audio is what counts.
    async fn waveform(
        &self,
        job: &Job,
        target: &Target,
        first: &Output,
        work: &Work,
    ) -> Option<Waveform> {
        let [peaks_object, picture_object] = waveform_objects(job.id.as_str());
        if let (Ok(peaks), Ok(picture)) = (
            self.outputs.info(&peaks_object).await,
            self.outputs.info(&picture_object).await,
        ) {
            return Some(Waveform {
                peaks_bytes: peaks.size as u64,
                picture_bytes: picture.size as u64,
            });
        }
        let made = async {
            let audio = work
                .dir
                .join(format!("output-0.{}", target.spec.format.extension()));
            if !tokio::fs::try_exists(&audio).await.unwrap_or(false) {
                // A split output's stored object is its tracks' zip; its
                // whole audio was only ever in the work dir.
                if !first.tracks.is_empty() {
                    return Err(AttemptError::Rejected(
                        "the whole audio of a split output is no longer at hand".into(),
                    ));
                }
                self.download_from(&self.outputs, &first.object, &audio)
                    .await?;
            }
            let picture = work.dir.join("waveform.png");
            let format = target.spec.format;
            let seconds = first.duration_seconds;
            let peaks =
                ffmpeg::make_waveform(&self.media, &audio, format, seconds, &picture).await?;
            let peaks_bytes = objects::put_object(
                &self.outputs,
                &peaks_object,
                peaks.as_slice(),
                self.chunk_size,
                Default::default(),
            )
            .await
            .map_err(transient("store the waveform"))?
            .size as u64;
            let picture_bytes = self
                .store(job, &picture, &picture_object, Default::default())
                .await?;
            Ok::<_, AttemptError>(Waveform {
                peaks_bytes,
                picture_bytes,
            })
        };
        match made.instrument(tracing::info_span!("waveform")).await {
            Ok(waveform) => Some(waveform),
            Err(err) => {
                tracing::warn!(error = %crate::error::chain(&err), "no waveform");
                None
            }
        }
    }
}
