//! Jobs on the wire: the job itself (jobs bucket, events, history), its
//! owner record, the work item, and the NATS submission requests.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::v;
use crate::audio::{AudioOptions, Format, LoudnessReport};
use crate::domain::JobId;

/// The lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Completed,
    Failed,
    /// Stopped by its owner; no email.
    Canceled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Canceled
        )
    }
}

/// One audio file a job makes: its format and options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputSpec {
    pub format: Format,
    #[serde(flatten)]
    pub options: AudioOptions,
}

impl OutputSpec {
    /// The extension of what the output delivers: its format's, or `zip`
    /// for the tracks of a split output.
    pub fn extension(&self) -> &'static str {
        match self.options.split {
            Some(_) => "zip",
            None => self.format.extension(),
        }
    }

    /// The media type of what the output delivers.
    pub fn content_type(&self) -> &'static str {
        match self.options.split {
            Some(_) => "application/zip",
            None => self.format.content_type(),
        }
    }
}

/// The most outputs one job may ask for.
pub const MAX_OUTPUTS: usize = 8;

/// Where a finished job's audio lives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Output {
    /// Object name in the outputs bucket.
    pub object: String,
    pub bytes: u64,
    pub content_type: String,
    /// Suggested file name for downloads.
    pub filename: String,
    pub duration_seconds: f64,
    /// Set when the job asked for loudness normalization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<LoudnessReport>,
    /// The tracks of a split output, which `object` (a zip) holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<Track>,
}

/// One track of a split output: an entry of its zip, stored uncompressed,
/// so that its bytes are the run `offset..offset + bytes` of the zip.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Track {
    pub title: String,
    /// Its name in the zip, and its download's.
    pub filename: String,
    /// Where it starts in the output, in seconds.
    pub start_seconds: f64,
    pub duration_seconds: f64,
    pub offset: u64,
    pub bytes: u64,
}

/// A completed job's waveform, stored next to its audio.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Waveform {
    /// Size of the peaks' JSON.
    pub peaks_bytes: u64,
    /// Size of the PNG picture.
    pub picture_bytes: u64,
}

/// A job: the value of its key in the jobs bucket, the body of its events and,
/// once finished, its row in the history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    #[serde(default = "v")]
    pub v: u32,
    pub id: JobId,
    /// User id of the owner.
    pub owner: String,
    pub owner_email: String,
    pub state: JobState,
    /// Percent done, 0–100.
    pub progress: f64,
    /// Encode speed as a multiple of real time, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Seconds until the encode is expected to end, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<f64>,
    pub format: Format,
    /// The options asked for (absent ones: the format's defaults). With
    /// `format`, the job's first output.
    #[serde(flatten)]
    pub options: AudioOptions,
    /// The outputs after the first, when the job asked for several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_outputs: Vec<OutputSpec>,
    /// The uploaded file's name as the client gave it.
    pub filename: String,
    pub input_bytes: u64,
    /// The object in the uploads bucket to convert, when it is not named
    /// after the job (jobs submitted over NATS name their own upload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    /// Stream sequence of the job's work item, from which Ingest tells a
    /// queued job's place in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_seq: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// How many times a transcoder has started on this job.
    pub attempts: u32,
    /// How many attempts failed for a reason on our side and were retried.
    #[serde(default)]
    pub retries: u32,
    /// Largest audio the job may make: what is left of its owner's storage
    /// quota once its upload is counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    /// Set when the job was queued while its upload was still arriving: the
    /// id the upload's chunks are stored under, which a transcoder follows
    /// as they come (the upload's size is then known only at its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamed_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The first output's audio, once the job completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    /// The audio of the outputs after the first, in their order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_results: Vec<Output>,
    /// The waveform of the first output, once completed (absent if it
    /// could not be made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waveform: Option<Waveform>,
    /// Raised each time the owner revokes the job's download links: a link
    /// is signed with the generation it was made at.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub link_generation: u32,
    /// Where the job's end is POSTed, signed with its owner's job secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    /// Size of the first output's cover picture, kept beside its audio as
    /// a JPEG ([`artwork_object`]), once completed with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artwork_bytes: Option<u64>,
    /// The URL the job's input is fetched from, when it was not uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Job {
    /// Name of the object in the uploads bucket this job converts.
    pub fn upload_object(&self) -> &str {
        self.upload.as_deref().unwrap_or(self.id.as_str())
    }

    /// Name of the object in the uploads bucket holding the cover picture
    /// uploaded with the job, if it has one.
    pub fn cover_object(&self) -> Option<String> {
        self.specs()
            .any(|spec| spec.options.cover == Some(crate::audio::Cover::Upload))
            .then(|| cover_object(self.id.as_str()))
    }

    /// The outputs the job makes, in order: `format` and `options` first.
    pub fn specs(&self) -> impl Iterator<Item = OutputSpec> + '_ {
        let first = OutputSpec {
            format: self.format,
            options: self.options.clone(),
        };
        std::iter::once(first).chain(self.more_outputs.iter().cloned())
    }

    /// The audio a completed job made, in the order of its outputs.
    pub fn results(&self) -> impl Iterator<Item = &Output> {
        self.output.iter().chain(&self.more_results)
    }

    /// Bytes the job's results take in the outputs bucket: the audio of
    /// every output, and the waveform.
    pub fn stored_bytes(&self) -> u64 {
        let waveform = self
            .waveform
            .as_ref()
            .map_or(0, |w| w.peaks_bytes + w.picture_bytes);
        self.results().map(|output| output.bytes).sum::<u64>()
            + waveform
            + self.artwork_bytes.unwrap_or(0)
    }

    /// Sets the audio the job made, one per output in order.
    pub fn set_results(&mut self, results: Vec<Output>) {
        let mut results = results.into_iter();
        self.output = results.next();
        self.more_results = results.collect();
    }
}

/// The name output `n` of a job is stored under in the outputs bucket. The
/// first keeps the name a job with one output has always had.
pub fn output_object(job: &str, n: usize, spec: &OutputSpec) -> String {
    let ext = spec.extension();
    match n {
        0 => format!("{job}.{ext}"),
        n => format!("{job}.{n}.{ext}"),
    }
}

/// The names a job's waveform is stored under in the outputs bucket: the
/// peaks' JSON and the picture.
pub fn waveform_objects(job: &str) -> [String; 2] {
    [
        format!("{job}.waveform.json"),
        format!("{job}.waveform.png"),
    ]
}

/// The name the first output's cover picture is kept under in the outputs
/// bucket, as a JPEG.
pub fn artwork_object(job: &str) -> String {
    format!("{job}.cover.jpg")
}

/// Everything kept beside a job's audio in the outputs bucket: the
/// waveform's peaks and picture, and the cover picture.
pub fn side_objects(job: &str) -> [String; 3] {
    let [peaks, picture] = waveform_objects(job);
    [peaks, picture, artwork_object(job)]
}

/// The name a job's uploaded cover picture is stored under.
pub fn cover_object(job: &str) -> String {
    format!("{job}.cover")
}

/// A job request over NATS (`mediajet.jobs.submit`), for an object the
/// caller has put into the uploads bucket under `<their email>/<name>`. The
/// caller's token travels in an `Authorization: Bearer` header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub v: u32,
    /// Name of the object in the uploads bucket.
    pub object: String,
    /// Output format name (default `mp3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// 1 or 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    /// A loudness preset's name or a target object, as in the HTTP API.
    /// Read as any JSON value so that a bad one gets `invalid_loudness`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loudness: Option<serde_json::Value>,
    /// Trim: seconds, or a clock as a string (`"1:30"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<serde_json::Value>,
    /// 0 (best) to 9 (smallest), instead of `bitrate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vbr: Option<u32>,
    /// Tags, as in the HTTP API. Spelled out rather than flattened: a
    /// flattened struct would let unknown fields through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub album: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    /// `frame`: a frame of the video as the cover picture (an uploaded
    /// picture is for HTTP uploads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<String>,
    /// The frame's time: seconds, or a clock as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_at: Option<serde_json::Value>,
    /// `chapters`: one track per chapter, as in the HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// Several outputs: a list of objects, each a `format` and options
    /// laid over the request's own, as in the HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<serde_json::Value>,
    /// A preset of the caller's whose options the request's own are laid
    /// over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The file name the job shows and the download is named after
    /// (default: the object's name without its owner prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Where the job's end is POSTed, as in the HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
}

/// A job status request over NATS (`mediajet.jobs.status`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub v: u32,
    pub job_id: String,
}

/// A unit of transcode work. The job id is also the message id, so JetStream
/// drops a duplicate submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkItem {
    #[serde(default = "v")]
    pub v: u32,
    pub job_id: JobId,
}

/// The owner of a job, as Ingest recorded it when the job was created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobOwner {
    #[serde(default = "v")]
    pub v: u32,
    /// User id.
    pub owner: String,
    pub email: String,
}
