//! The conversion's I/O: the upload to a work file (or, for a job queued
//! while its upload arrives, through a pipe into ffmpeg as it comes),
//! ffmpeg with progress written to the job (two passes for a normalized
//! output: the first, which measures, is the one fed as the upload
//! arrives), the audio back into the outputs bucket.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::error::{AttemptError, transient};
use super::ffmpeg::{self, Encode, Finished, Input, Known, Pass, Plan, Progress};
use super::ownership::{Standing, Stops};
use super::{OUTPUT_DURATION, OUTPUT_LOUDNESS, Transcoder, feed};
use crate::audio::{LoudnessReport, Normalization};
use crate::storage::objects;
use crate::wire::{Cover, Job, Output};

/// How long a followed upload may go without a new chunk before it is taken
/// to have broken off. Ingest cancels the job of an upload that fails at
/// once; this is for an Ingest that died mid-upload.
const UPLOAD_IDLE: Duration = Duration::from_secs(60);

/// What one pass ended with.
struct Passed {
    finished: Finished,
    /// ffmpeg's last progress report.
    last: Progress,
    /// The upload's size, when this pass was fed as it arrived.
    fed: Option<u64>,
}

/// The attempt's ways to stop, and where it records progress.
struct Watch<'a> {
    job: &'a mut Job,
    revision: &'a mut Option<u64>,
    interrupt: &'a CancellationToken,
    stops: &'a Stops,
}

impl Transcoder {
    pub(super) async fn convert(
        &self,
        job: &mut Job,
        revision: &mut Option<u64>,
        interrupt: &CancellationToken,
        stops: &Stops,
    ) -> Result<Output, AttemptError> {
        let object = format!("{}.{}", job.id, job.format.extension());
        let stem = job
            .filename
            .rsplit_once('.')
            .map_or(job.filename.as_str(), |(stem, _)| stem);
        let filename = format!("{stem}.{}", job.format.extension());
        let content_type = job.format.content_type().to_string();
        let output = |bytes: u64, duration_seconds: f64, loudness| Output {
            object: object.clone(),
            bytes,
            content_type: content_type.clone(),
            filename: filename.clone(),
            duration_seconds,
            loudness,
        };
        // An earlier delivery may have stored the audio and then died before
        // recording it. The object exists only once it was stored whole, and
        // carries its duration: use it rather than encode again.
        if let Ok(info) = self.outputs.info(&object).await
            && let Some(duration) = info
                .metadata
                .get(OUTPUT_DURATION)
                .and_then(|d| d.parse::<f64>().ok())
        {
            tracing::info!("the audio is already stored; not encoding again");
            let loudness = info
                .metadata
                .get(OUTPUT_LOUDNESS)
                .and_then(|report| serde_json::from_str(report).ok());
            return Ok(output(info.size as u64, duration, loudness));
        }
        let dir = ffmpeg::work_dir(&self.work_root, job.id.as_str());
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(transient("create the work dir"))?;
        let input = dir.join("input");
        let output_path = dir.join(format!("output.{}", job.format.extension()));

        // The job may make no more audio than its owner's quota has room for.
        let mut media = self.media.clone();
        if let Some(left) = job.max_output_bytes {
            media.max_output_bytes = media.max_output_bytes.min(left.max(1));
        }
        let media = &media;
        // A normalized output is measured first; that pass writes nothing.
        // A single pass takes the file name as the title, and one reading a
        // file is stopped and run again if the input turns out to have a
        // title of its own; a pipe cannot be read again, so there the file
        // name stays. A cover is made before the pass that writes.
        let plan = Plan::new(job.format, job.options.clone(), stem);
        let target = plan.loudness();
        let passes = if target.is_some() { 2 } else { 1 };
        let retitle = target.is_none() && plan.title_from_input();
        let phase = Instant::now();
        // A cover taken from a frame needs the whole upload: a job queued
        // while its upload arrives then waits for all of it rather than
        // encode from the pipe.
        let mut fed_whole = None;
        let streamed = match job.streamed_from.clone() {
            Some(nuid) if job.options.cover == Some(Cover::Frame) => {
                let chunks = self.uploads.follow(job.upload_object(), &nuid, UPLOAD_IDLE);
                let (reader, writer) = std::io::pipe().map_err(transient("make a pipe"))?;
                drop(reader);
                let feed = feed::feed(objects::read_ahead(chunks, 2), input.clone(), writer);
                // Dropped with the attempt, the feeding stops too.
                let feeding = AbortOnDropHandle::new(tokio::spawn(feed));
                let done = tokio::select! {
                    done = feeding => done,
                    _ = stops.canceled.cancelled() => return Err(AttemptError::Canceled),
                    _ = stops.superseded.cancelled() => return Err(AttemptError::Superseded),
                    _ = interrupt.cancelled() => return Err(AttemptError::Interrupted),
                };
                fed_whole = Some(feed::outcome(done)?);
                None
            }
            streamed => streamed,
        };
        if streamed.is_none() && fed_whole.is_none() {
            // ffmpeg needs a seekable file for containers such as MP4.
            self.download(job.upload_object(), &input).await?;
            tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "upload copied");
        }
        let cover = self.cover(job, &input, &dir, media, &plan).await?;
        let known = |measured, input_rate, input_titled| Known {
            measured,
            input_rate,
            input_titled,
            cover: cover
                .as_ref()
                .map(|(picture, bytes)| (picture, bytes.as_slice())),
        };
        let picture = cover
            .as_ref()
            .filter(|_| plan.attaches_picture())
            .map(|(picture, _)| picture.path.as_path());
        let (first_output, first_args, first_picture) = match target {
            Some(target) => (None, plan.measure_args(target), None),
            None => (
                Some(output_path.as_path()),
                plan.encode_args(&known(None, None, false)).0,
                picture,
            ),
        };
        let first = |input| Pass {
            input,
            output: first_output,
            args: &first_args,
            picture: first_picture,
            stop_if_titled: false,
        };
        let (encode, feeding) = match streamed {
            // Queued while its upload arrives: ffmpeg reads the chunks
            // through a pipe as they are stored; a copy goes to the work file.
            Some(nuid) => {
                let chunks = self.uploads.follow(job.upload_object(), &nuid, UPLOAD_IDLE);
                let (reader, writer) = std::io::pipe().map_err(transient("make a pipe"))?;
                let encode = Encode::start(media, first(Input::Pipe(reader)))?;
                let feed = feed::feed(objects::read_ahead(chunks, 2), input.clone(), writer);
                // Dropped with the attempt, the feeding stops too.
                let feeding = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(feed));
                (encode, Some(feeding))
            }
            None => {
                let pass = Pass {
                    stop_if_titled: retitle,
                    ..first(Input::File(&input))
                };
                (Encode::start(media, pass)?, None)
            }
        };
        let mut watch = Watch {
            job,
            revision,
            interrupt,
            stops,
        };
        let mut passed = self
            .pass(&mut watch, &plan, encode, feeding, (0, passes))
            .await?;
        if passed.finished.stopped_for_title {
            let (args, _) = plan.encode_args(&known(None, None, true));
            let pass = Pass {
                args: &args,
                ..first(Input::File(&input))
            };
            let encode = Encode::start(media, pass)?;
            passed = self
                .pass(&mut watch, &plan, encode, None, (0, passes))
                .await?;
        }
        if let Some(size) = passed.fed.or(fed_whole) {
            watch.job.input_bytes = size;
        }
        // A pass short enough to end before its first progress report.
        if let Some(reason) = passed.last.total.and_then(|total| plan.refusal(total)) {
            return Err(AttemptError::Rejected(reason));
        }
        let mut loudness = None;
        if let Some(target) = target {
            let unread = |what| transient(what)("ffmpeg did not report it");
            let measured = ffmpeg::parse_measurement(&passed.finished.lines)
                .ok_or_else(|| unread("read the loudness measurement"))?;
            let (args, normalization) = plan.encode_args(&known(
                Some((target, measured)),
                passed.finished.input_rate,
                passed.finished.input_titled,
            ));
            let pass = Pass {
                input: Input::File(&input),
                output: Some(&output_path),
                args: &args,
                picture,
                stop_if_titled: false,
            };
            let encode = Encode::start(media, pass)?;
            passed = self
                .pass(&mut watch, &plan, encode, None, (1, passes))
                .await?;
            let output = ffmpeg::parse_output(&passed.finished.lines)
                .ok_or_else(|| unread("read the output's loudness"))?;
            loudness = Some(LoudnessReport {
                target,
                input: measured.stats,
                output,
                normalization: normalization.unwrap_or(Normalization::Linear),
            });
        }
        let job = watch.job;
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
            && let Some(expected) = ffmpeg::audio_duration(media, &input).await?
            && short(expected)
        {
            let expected = plan.output_length(expected);
            return Err(AttemptError::Rejected(format!(
                "only {duration:.1} of {expected:.1} seconds of audio could be read; \
                 the file is damaged or incomplete"
            )));
        }
        // Storing would replace the audio a later attempt may have stored
        // and be serving: check the job is still this attempt's first. Not
        // knowing (NATS unreachable) is a reason to try again later.
        match self.standing(job).await {
            Ok(Standing::Superseded) => return Err(AttemptError::Superseded),
            Ok(_) => {}
            Err(err) => return Err(transient("check the job")(err)),
        }
        let file = tokio::fs::File::open(&output_path)
            .await
            .map_err(transient("open the output"))?;
        let mut metadata: std::collections::HashMap<String, String> =
            [(OUTPUT_DURATION.to_string(), duration.to_string())].into();
        if let Some(report) = &loudness
            && let Ok(json) = serde_json::to_string(report)
        {
            metadata.insert(OUTPUT_LOUDNESS.to_string(), json);
        }
        let phase = Instant::now();
        let info = objects::put_object(&self.outputs, &object, file, self.chunk_size, metadata)
            .await
            .map_err(transient("store the output"))?;
        tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "audio stored");
        Ok(output(info.size as u64, duration, loudness))
    }

    /// Runs one ffmpeg pass to its end, recording progress as the share
    /// `(index, count)` of the whole conversion, and stopping it when the
    /// job is canceled or taken over, the transcoder shuts down, it runs
    /// out of time, or the input turns out too short for the plan's trim.
    /// A pass fed as the upload arrives ends only once the upload is whole
    /// and matches its digest.
    async fn pass(
        &self,
        watch: &mut Watch<'_>,
        plan: &Plan,
        mut encode: Encode,
        mut feeding: Option<AbortOnDropHandle<std::io::Result<u64>>>,
        (index, count): (usize, usize),
    ) -> Result<Passed, AttemptError> {
        let Watch {
            job,
            revision,
            interrupt,
            stops,
        } = watch;
        let mut fed: Option<u64> = None;
        let encode_deadline = tokio::time::sleep(self.media.encode_timeout);
        tokio::pin!(encode_deadline);
        let mut last_saved = Instant::now();
        let result = loop {
            tokio::select! {
                changed = encode.progress.changed() => {
                    if changed.is_err() {
                        break encode.finish().await;
                    }
                    let progress = *encode.progress.borrow_and_update();
                    if let Some(reason) = progress.total.and_then(|total| plan.refusal(total)) {
                        stop(&mut encode).await;
                        return Err(AttemptError::Rejected(reason));
                    }
                    let total = progress.total.map(|total| plan.output_length(total));
                    if let Some(total) = total.filter(|total| *total > 0.0)
                        && last_saved.elapsed() >= Duration::from_millis(500)
                    {
                        let done = (progress.seconds / total).clamp(0.0, 1.0);
                        let share = (index as f64 + done) / count as f64;
                        job.progress = (share * 100.0).clamp(0.0, 99.0).round();
                        job.speed = (progress.speed > 0.0).then_some(progress.speed);
                        // Later passes read the whole input again.
                        let left = (total - progress.seconds).max(0.0)
                            + total * (count - index - 1) as f64;
                        job.eta_seconds = job.speed.map(|speed| (left / speed).round());
                        **revision = self.save_over(job, **revision, stops).await;
                        last_saved = Instant::now();
                    }
                }
                done = async { feeding.as_mut().expect("guarded").await }, if feeding.is_some() => {
                    feeding = None;
                    match feed::outcome(done) {
                        // The time limit is for the conversion, not for the
                        // upload (bounded by Ingest's rate floor and the
                        // idle limit): it starts over once the upload is in.
                        Ok(size) => {
                            fed = Some(size);
                            encode_deadline
                                .as_mut()
                                .reset(tokio::time::Instant::now() + self.media.encode_timeout);
                        }
                        Err(err) => {
                            stop(&mut encode).await;
                            return Err(err);
                        }
                    }
                }
                _ = stops.canceled.cancelled() => {
                    stop(&mut encode).await;
                    return Err(AttemptError::Canceled);
                }
                _ = stops.superseded.cancelled() => {
                    stop(&mut encode).await;
                    return Err(AttemptError::Superseded);
                }
                _ = interrupt.cancelled() => {
                    stop(&mut encode).await;
                    return Err(AttemptError::Interrupted);
                }
                _ = &mut encode_deadline => {
                    stop(&mut encode).await;
                    return Err(AttemptError::Rejected(format!(
                        "the conversion took longer than the limit of {} seconds",
                        self.media.encode_timeout.as_secs()
                    )));
                }
            }
        };
        // ffmpeg is done with what it was given; a followed upload counts
        // only once it is whole and matches its digest.
        if let Some(feeding) = feeding {
            let done = tokio::select! {
                done = feeding => done,
                _ = stops.canceled.cancelled() => return Err(AttemptError::Canceled),
                _ = stops.superseded.cancelled() => return Err(AttemptError::Superseded),
                _ = interrupt.cancelled() => return Err(AttemptError::Interrupted),
            };
            fed = Some(feed::outcome(done)?);
        }
        let finished = result?;
        let last = *encode.progress.borrow();
        Ok(Passed {
            finished,
            last,
            fed,
        })
    }
}

/// Kills a pass and waits for it to be gone.
async fn stop(encode: &mut Encode) {
    encode.kill();
    let _ = encode.finish().await;
}
