//! One output made: its ffmpeg passes (a measuring pass first for a
//! normalized output; a pass run again when the input's description
//! changes what it must write), the checks on what they wrote, a split
//! output's tracks, and the audio stored in the outputs bucket.

use std::path::Path;
use std::time::Instant;

use tokio_util::task::AbortOnDropHandle;

use super::convert::{Target, UPLOAD_IDLE, Work};
use super::error::{AttemptError, transient};
use super::ffmpeg::{self, Encode, Input, Known, MediaPolicy, Pass, Plan, StopIf};
use super::ownership::Standing;
use super::pass::Watch;
use super::{OUTPUT_DURATION, OUTPUT_LOUDNESS, OUTPUT_TRACKS, Transcoder, feed, id3, split};
use crate::audio::{LoudnessReport, Normalization};
use crate::storage::objects;
use crate::wire::{self, Job, Output};

impl Transcoder {
    /// Makes one output: its passes, its checks, its audio stored (a split
    /// output's tracks, in a zip). `streamed` is the id of the upload's
    /// chunks when this output's first pass reads them as they arrive; the
    /// upload's size is then returned too.
    pub(super) async fn make(
        &self,
        watch: &mut Watch<'_>,
        target: &Target,
        work: &Work,
        media: &MediaPolicy,
        streamed: Option<String>,
        (passes_done, total): (usize, usize),
    ) -> Result<(Output, Option<u64>), AttemptError> {
        let input = work.input.as_path();
        let output_path = work.dir.join(format!(
            "output-{}.{}",
            target.n,
            target.spec.format.extension()
        ));
        // A normalized output is measured first; that pass writes nothing.
        // A single pass takes the file name as the title and writes no
        // chapters of its own; one reading a file is stopped and run again
        // if the input turns out to have a title of its own, or chapters
        // the format needs written (FLAC). A pipe cannot be read again, so
        // there the file name stays and such chapters are left out. A cover
        // is made before the pass that writes.
        let plan = Plan::new(target.spec.format, target.spec.options.clone(), &work.stem);
        let loudness_target = plan.loudness();
        let phase = Instant::now();
        let cover = self
            .cover(
                &target.spec.options,
                work.cover_object.as_deref(),
                input,
                &work.dir,
                media,
                &plan,
            )
            .await?;
        let cover_known = cover
            .as_ref()
            .map(|(picture, bytes)| (picture, bytes.as_slice()));
        let picture = cover
            .as_ref()
            .filter(|_| plan.attaches_picture())
            .map(|(picture, _)| picture.path.as_path());
        let plain = Known {
            cover: cover_known,
            ..Known::default()
        };
        let (first_output, first_args, first_picture) = match loudness_target {
            Some(target) => (None, plan.measure_args(target), None),
            None => (
                Some(output_path.as_path()),
                plan.encode_args(&plain).0,
                picture,
            ),
        };
        let first = |input| Pass {
            input,
            output: first_output,
            args: &first_args,
            picture: first_picture,
            seek: None,
            stop_if: StopIf::default(),
        };
        let (encode, feeding) = match streamed {
            // Queued while its upload arrives: ffmpeg reads the chunks
            // through a pipe as they are stored; a copy goes to the work file.
            Some(nuid) => {
                let job = &*watch.job;
                let chunks = self.uploads.follow(job.upload_object(), &nuid, UPLOAD_IDLE);
                let (reader, writer) = std::io::pipe().map_err(transient("make a pipe"))?;
                let encode = Encode::start(media, first(Input::Pipe(reader)))?;
                let feed = feed::feed(objects::read_ahead(chunks, 2), input.to_path_buf(), writer);
                // Dropped with the attempt, the feeding stops too.
                (encode, Some(AbortOnDropHandle::new(tokio::spawn(feed))))
            }
            None => {
                let stop_if = match loudness_target {
                    None => plan.stop_if(),
                    Some(_) => StopIf::default(),
                };
                let pass = Pass {
                    stop_if,
                    ..first(Input::File(input))
                };
                (Encode::start(media, pass)?, None)
            }
        };
        let mut passed = self
            .pass(watch, &plan, encode, feeding, (passes_done, total))
            .await?;
        // What the input's description told, which the encode needs.
        let described = passed.finished.clone();
        let known = Known {
            input_rate: described.input_rate,
            input_titled: described.input_titled,
            chapters: &described.chapters.list,
            ..plain
        };
        if passed.finished.stopped_early {
            let (args, _) = plan.encode_args(&known);
            let pass = Pass {
                args: &args,
                ..first(Input::File(input))
            };
            let encode = Encode::start(media, pass)?;
            passed = self
                .pass(watch, &plan, encode, None, (passes_done, total))
                .await?;
        }
        let fed = passed.fed;
        // A pass short enough to end before its first progress report.
        if let Some(reason) = passed.last.total.and_then(|total| plan.refusal(total)) {
            return Err(AttemptError::Rejected(reason));
        }
        let mut loudness = None;
        let mut measurement = None;
        if let Some(loudness_target) = loudness_target {
            let unread = |what| transient(what)("ffmpeg did not report it");
            let measured = ffmpeg::parse_measurement(&passed.finished.lines)
                .ok_or_else(|| unread("read the loudness measurement"))?;
            measurement = Some((loudness_target, measured));
            let (args, normalization) = plan.encode_args(&Known {
                measured: measurement,
                ..known
            });
            let pass = Pass {
                input: Input::File(input),
                output: Some(&output_path),
                args: &args,
                picture,
                seek: None,
                stop_if: StopIf::default(),
            };
            let encode = Encode::start(media, pass)?;
            passed = self
                .pass(watch, &plan, encode, None, (passes_done + 1, total))
                .await?;
            let output = ffmpeg::parse_output(&passed.finished.lines)
                .ok_or_else(|| unread("read the output's loudness"))?;
            loudness = Some(LoudnessReport {
                target: loudness_target,
                input: measured.stats,
                output,
                normalization: normalization.unwrap_or(Normalization::Linear),
            });
        }
        tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "encoded");
        // ffmpeg's last report says how much audio it wrote. Each ffprobe run
        // costs about as much CPU as a short encode (mostly loading its
        // libraries), so the output is probed only when ffmpeg did not say.
        let last = passed.last;
        let duration = if last.seconds > 0.0 {
            last.seconds
        } else {
            ffmpeg::output_duration(media, &output_path).await?
        };
        // ffmpeg can exit 0 having read only part of an input (an mp4 whose
        // index is missing or damaged): a short output is a failed job, not
        // audio to hand out. Audio that ends before the picture is not
        // short, so only then is the audio stream itself measured.
        let short = |input: f64| {
            let expected = plan.output_length(input);
            duration < expected * 0.95 - 1.0
        };
        if last.total.is_some_and(short)
            && let Some(expected) = ffmpeg::audio_duration(media, input).await?
            && short(expected)
        {
            let expected = plan.output_length(expected);
            return Err(AttemptError::Rejected(format!(
                "only {duration:.1} of {expected:.1} seconds of audio could be read; \
                 the file is damaged or incomplete"
            )));
        }
        id3::place_comment(target.spec.format, &output_path).await?;
        let mut metadata: std::collections::HashMap<String, String> =
            [(OUTPUT_DURATION.to_string(), duration.to_string())].into();
        if let Some(report) = &loudness
            && let Ok(json) = serde_json::to_string(report)
        {
            metadata.insert(OUTPUT_LOUDNESS.to_string(), json);
        }
        let (delivered, tracks) = match target.spec.options.split {
            None => (output_path.clone(), Vec::new()),
            Some(_) => {
                let source = split::Source {
                    n: target.n,
                    input,
                    dir: &work.dir,
                    spec: &target.spec,
                    stem: &work.stem,
                    known: Known {
                        measured: measurement,
                        ..known
                    },
                    picture,
                };
                let chapters = &described.chapters;
                let tracks = self
                    .split(
                        watch,
                        &source,
                        chapters,
                        duration,
                        media,
                        (passes_done + target.passes() - 1, total),
                    )
                    .await?;
                if let Ok(json) = serde_json::to_string(&tracks.1) {
                    metadata.insert(OUTPUT_TRACKS.to_string(), json);
                }
                tracks
            }
        };
        // The first output's cover is kept beside its audio, for the
        // feeds that show it; stored first, so that stored audio means a
        // stored cover.
        if let (0, Some((picture, _))) = (target.n, &cover) {
            let artwork = wire::artwork_object(watch.job.id.as_str());
            self.store(watch.job, &picture.path, &artwork, Default::default())
                .await?;
        }
        let size = self
            .store(watch.job, &delivered, &target.object, metadata)
            .await?;
        // The first output's audio stays for its waveform.
        if target.n > 0 {
            let _ = tokio::fs::remove_file(&output_path).await;
        }
        if delivered != output_path {
            let _ = tokio::fs::remove_file(&delivered).await;
        }
        Ok((target.output(size, duration, loudness, tracks), fed))
    }

    /// Stores a file with `metadata`, if the job is still this attempt's;
    /// returns its size.
    pub(super) async fn store(
        &self,
        job: &Job,
        path: &Path,
        object: &str,
        metadata: std::collections::HashMap<String, String>,
    ) -> Result<u64, AttemptError> {
        // Storing would replace the audio a later attempt may have stored
        // and be serving: check the job is still this attempt's first. Not
        // knowing (NATS unreachable) is a reason to try again later.
        match self.standing(job).await {
            Ok(Standing::Superseded) => return Err(AttemptError::Superseded),
            Ok(_) => {}
            Err(err) => return Err(transient("check the job")(err)),
        }
        let file = tokio::fs::File::open(path)
            .await
            .map_err(transient("open the output"))?;
        let phase = Instant::now();
        let info = objects::put_object(&self.outputs, object, file, self.chunk_size, metadata)
            .await
            .map_err(transient("store the output"))?;
        tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "audio stored");
        Ok(info.size as u64)
    }
}
