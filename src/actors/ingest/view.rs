//! A job as its owner sees it: the one view HTTP, the NATS jobs service and
//! the event stream all answer with.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::audio::LoudnessReport;
use crate::token::links::Links;
use crate::wire::{AudioOptions, Format, Job, JobState};

/// A job as its owner sees it.
#[derive(Serialize, ToSchema)]
#[schema(as = Job)]
pub struct JobView {
    id: String,
    state: JobState,
    progress: f64,
    /// Encode speed as a multiple of real time, while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    speed: Option<f64>,
    /// Seconds until the encode should end, while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    eta_seconds: Option<f64>,
    /// Place in the queue while queued; 1 starts next.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_position: Option<u64>,
    format: Format,
    #[serde(flatten)]
    options: AudioOptions,
    filename: String,
    /// The input's size; 0 while an imported input (`source_url`) is
    /// still being fetched.
    input_bytes: u64,
    /// The URL the input was imported from, when it was not uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    source_url: Option<String>,
    /// Where the job's end is POSTed, signed with the owner's job secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_url: Option<String>,
    /// Whether the conversion started while the upload was still arriving
    /// (streamable containers whose form fields came before the file).
    streamed: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    finished_at: Option<OffsetDateTime>,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The first output's audio, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<OutputView>,
    /// A signed link to the first output's audio, once completed: it
    /// downloads without a token (byte ranges too) until it expires or the
    /// owner revokes the job's links.
    #[serde(skip_serializing_if = "Option::is_none")]
    share_url: Option<String>,
    /// A signed link to the first output's cover picture (a JPEG), once
    /// completed with one; it lasts as long as `share_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    cover_url: Option<String>,
    /// Every output the job makes, in the order asked for: one unless the
    /// job asked for several (`outputs`).
    outputs: Vec<OutputEntry>,
    /// The first output's waveform, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    waveform: Option<WaveformView>,
}

/// Where a completed job's waveform is.
#[derive(Serialize, ToSchema)]
#[schema(as = Waveform)]
struct WaveformView {
    /// The peaks, as audiowaveform's JSON.
    peaks: String,
    /// The picture, a PNG.
    picture: String,
}

/// One of a job's outputs: what was asked for and, once the job completed,
/// its audio.
#[derive(Serialize, ToSchema)]
struct OutputEntry {
    format: Format,
    #[serde(flatten)]
    options: AudioOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<OutputView>,
}

/// A completed job's audio.
#[derive(Clone, Serialize, ToSchema)]
#[schema(as = Output)]
struct OutputView {
    url: String,
    /// A signed link to the same audio, as the job's `share_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    share_url: Option<String>,
    filename: String,
    content_type: String,
    bytes: u64,
    duration_seconds: f64,
    /// Audio statistics of a normalized output: the input as measured and
    /// the output as it went to the encoder.
    #[serde(skip_serializing_if = "Option::is_none")]
    loudness: Option<LoudnessReport>,
    /// The tracks of a split output (`url` is then their zip), each also
    /// downloadable on its own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tracks: Vec<TrackView>,
}

/// One track of a split output.
#[derive(Clone, Serialize, ToSchema)]
#[schema(as = Track)]
struct TrackView {
    url: String,
    /// A signed link to the track, as the job's `share_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    share_url: Option<String>,
    title: String,
    filename: String,
    /// Where the track starts in the output.
    start_seconds: f64,
    duration_seconds: f64,
    bytes: u64,
}

impl JobView {
    /// The view of a job, with its queue place worked out from the last
    /// work item taken (see [`Ingest::work_taken`]) and its signed links.
    pub fn new(job: Job, taken: Option<u64>, links: &Links) -> Self {
        let queue_position = queue_position(&job, taken);
        let audio: Vec<OutputView> = job
            .results()
            .enumerate()
            .map(|(n, o)| OutputView {
                url: format!("/v1/jobs/{}/outputs/{n}", job.id),
                share_url: links.url(&job, n, None),
                filename: o.filename.clone(),
                content_type: o.content_type.clone(),
                bytes: o.bytes,
                duration_seconds: o.duration_seconds,
                loudness: o.loudness,
                tracks: o
                    .tracks
                    .iter()
                    .enumerate()
                    .map(|(k, track)| TrackView {
                        url: format!("/v1/jobs/{}/outputs/{n}/tracks/{k}", job.id),
                        share_url: links.url(&job, n, Some(k)),
                        title: track.title.clone(),
                        filename: track.filename.clone(),
                        start_seconds: track.start_seconds,
                        duration_seconds: track.duration_seconds,
                        bytes: track.bytes,
                    })
                    .collect(),
            })
            .collect();
        // The first output keeps the address it had before jobs made
        // several.
        let output = audio.first().cloned().map(|first| OutputView {
            url: format!("/v1/jobs/{}/output", job.id),
            ..first
        });
        let share_url = output.as_ref().and_then(|o| o.share_url.clone());
        let cover_url = links.cover_url(&job);
        let waveform = job.waveform.as_ref().map(|_| WaveformView {
            peaks: format!("/v1/jobs/{}/waveform.json", job.id),
            picture: format!("/v1/jobs/{}/waveform.png", job.id),
        });
        let mut audio = audio.into_iter();
        let outputs = job
            .specs()
            .map(|spec| OutputEntry {
                format: spec.format,
                options: spec.options,
                audio: audio.next(),
            })
            .collect();
        JobView {
            id: job.id.into(),
            state: job.state,
            progress: job.progress,
            speed: job.speed,
            eta_seconds: job.eta_seconds,
            queue_position,
            format: job.format,
            options: job.options,
            filename: job.filename,
            input_bytes: job.input_bytes,
            source_url: job.source_url,
            notify_url: job.notify_url,
            streamed: job.streamed_from.is_some(),
            created_at: job.created_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
            attempts: job.attempts,
            error: job.error,
            output,
            share_url,
            cover_url,
            outputs,
            waveform,
        }
    }

    pub fn state(&self) -> JobState {
        self.state
    }

    pub fn queue_position(&self) -> Option<u64> {
        self.queue_position
    }
}

/// A queued job's place in the queue (1: next to start): the work items
/// not yet taken by a transcoder up to and including its own. Items of jobs
/// canceled while queued still count until a transcoder skips them.
fn queue_position(job: &Job, taken: Option<u64>) -> Option<u64> {
    if job.state != JobState::Queued {
        return None;
    }
    Some(job.work_seq?.saturating_sub(taken?).max(1))
}
