//! The frame of the OpenAPI document: title, security schemes, tags, and
//! the schema of the error answer. The operations come from the
//! `#[utoipa::path]` attributes in `http/`.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::wire::Format;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mediajet",
        description = "Video-to-audio conversion: upload a video, follow its job, download the audio."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "users", description = "Login and user management"),
        (name = "jobs", description = "Conversion jobs and their audio"),
        (name = "presets", description = "Named option sets to submit with"),
        (name = "links", description = "Signed download links, which need no token"),
        (name = "webhooks", description = "Signed notifications of jobs' ends, POSTed to the user's receivers"),
        (name = "feed", description = "A private podcast feed of the user's audio"),
        (name = "api keys", description = "Long-lived keys for scripts and services, each limited to its scopes"),
        (name = "compatibility", description = "The routes of the service mediajet replaces"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// The multipart form of an upload. Only described, never built: the
/// handler reads the form as a stream, field by field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct JobForm {
    /// The video. Best sent after the options: an upload whose options
    /// turn out bad is stored before it is refused (and then discarded).
    #[schema(value_type = Option<String>, format = Binary, content_media_type = "application/octet-stream")]
    file: Option<Vec<u8>>,
    /// Instead of `file`: an http(s) URL the service fetches the video
    /// from, at a public address, within the upload limit and the
    /// caller's quota (see `ImportRequest`).
    #[schema(max_length = 2048, example = "https://example.com/talk.mp4")]
    source_url: Option<String>,
    /// Where the job's end (`job.completed`, `job.failed`, `job.canceled`)
    /// is POSTed, signed with the caller's job secret
    /// (`/v1/webhooks/job-secret`), which must exist. Refused with
    /// `invalid_notify_url` or `no_job_secret`.
    #[schema(max_length = 2048, example = "https://example.com/hooks/job")]
    notify_url: Option<String>,
    /// One of your presets (`/v1/presets`): its options are the base the
    /// other fields are laid over. It comes before them; unknown, it is
    /// refused with `invalid_preset`.
    #[schema(max_length = 64)]
    preset: Option<String>,
    /// Output format (default `mp3`).
    format: Option<Format>,
    /// Bit rate in kbit/s (`128k` works too); which values a format takes
    /// is in the README's format table.
    #[schema(minimum = 6, maximum = 510)]
    bitrate: Option<u32>,
    /// Sample rate in Hz.
    #[schema(minimum = 8000, maximum = 192000)]
    sample_rate: Option<u32>,
    /// `1` downmixes to mono, `2` to stereo.
    #[schema(minimum = 1, maximum = 2)]
    channels: Option<u8>,
    /// Loudness to normalize to: a preset (`podcast` −16 LUFS, `podcast-mono`
    /// −19 and mono, `streaming` −14, `ebu-r128` −23, `atsc-a85` −24) or a
    /// target as JSON, `{"integrated": -18, "true_peak": -1.5, "lra": 11}`
    /// (LUFS −40 to −5, dBTP −9 to 0, LU 1 to 50). Refused with
    /// `invalid_loudness`.
    #[schema(max_length = 256, example = "podcast")]
    loudness: Option<String>,
    /// Where the output starts in the input: seconds (`90.5`) or a clock
    /// (`1:30`, `01:02:03.250`). A start at or past the input's end fails
    /// the job (the input's length is known once it is read).
    #[schema(max_length = 16, example = "1:30")]
    start: Option<String>,
    /// Where the output ends, as `start`; after `start`.
    #[schema(max_length = 16, example = "01:02:03.250")]
    end: Option<String>,
    /// Variable bit rate instead of `bitrate` (mp3, aac, opus): 0 (best)
    /// to 9 (smallest).
    #[schema(minimum = 0, maximum = 9)]
    vbr: Option<u8>,
    /// Tags of the output (ID3v2.4 in mp3, MP4 atoms in m4a, Vorbis
    /// comments in FLAC and Opus), at most 256 bytes each, no control
    /// characters. A tag left out comes from the input's own tags; the
    /// title, failing that, is the file name without its extension.
    #[schema(max_length = 256)]
    title: Option<String>,
    #[schema(max_length = 256)]
    artist: Option<String>,
    #[schema(max_length = 256)]
    album: Option<String>,
    /// A year or a date (`2026`, `2026-12-04`).
    #[schema(max_length = 256)]
    date: Option<String>,
    /// `3` or `3/12`.
    #[schema(max_length = 9, pattern = "^[0-9]{1,4}(/[0-9]{1,4})?$")]
    track: Option<String>,
    /// The one tag that may hold line breaks.
    #[schema(max_length = 256)]
    comment: Option<String>,
    #[schema(max_length = 256)]
    genre: Option<String>,
    /// The cover picture embedded in mp3, m4a, FLAC and Opus outputs: the
    /// text `frame` (a frame of the video, at most 1400 pixels a side), or
    /// a JPEG or PNG file part of at most 8 MiB. Refused with
    /// `invalid_cover`; a picture ffmpeg cannot decode or larger than the
    /// media policy allows fails the job.
    #[schema(value_type = Option<String>, example = "frame")]
    cover: Option<String>,
    /// With `cover=frame`: the frame's time, as `start` (default: a tenth
    /// of the way in).
    #[schema(max_length = 16, example = "0:42")]
    cover_at: Option<String>,
    /// `chapters`: one track per chapter of the input (titled and
    /// numbered), delivered as a zip of the tracks and an `.m3u8` playlist
    /// at the output's address; each track is also downloadable on its
    /// own. An input without chapters gives one track. Refused with
    /// `invalid_split`.
    #[schema(example = "chapters")]
    split: Option<String>,
    /// Several outputs from the one upload: a JSON list of 1 to 8 objects,
    /// each a `format` and options as in a preset, laid over the form's
    /// other fields (which are then the defaults of every output). Each
    /// output is downloaded at `/v1/jobs/{id}/outputs/{n}`, `n` counting
    /// from 0 in this order. Refused with `invalid_outputs`, or the code of
    /// the option an entry got wrong.
    #[schema(
        max_length = 4096,
        example = r#"[{"format":"mp3","bitrate":128,"channels":1,"loudness":"podcast"},{"format":"opus","bitrate":64},{"format":"flac"}]"#
    )]
    outputs: Option<String>,
}

/// A job whose video the service fetches from a URL: the URL, and the
/// members a multipart upload's fields would be (`outputs` a JSON list).
/// Only described: the handler reads the object member by member.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImportRequest {
    /// An http(s) URL at a public address, without credentials. It is
    /// fetched after the job is made: redirects are followed (each checked
    /// again), a broken transfer is resumed where the server allows
    /// ranges, and a fetch that fails (the name does not resolve, no
    /// connection or TLS, a status other than 200, larger than the upload
    /// limit or the caller's quota) fails the job with the reason.
    #[schema(max_length = 2048, example = "https://example.com/talk.mp4")]
    source_url: String,
    /// The name the job shows (default: the URL's last path segment).
    #[schema(max_length = 256)]
    filename: Option<String>,
    /// One of your presets: the base the other members are laid over.
    #[schema(max_length = 64)]
    preset: Option<String>,
    /// As in the multipart form.
    #[schema(max_length = 2048)]
    notify_url: Option<String>,
    /// Several outputs, as in the multipart form, but a JSON list.
    #[schema(max_items = 8)]
    outputs: Option<Vec<PresetOptions>>,
    #[schema(inline)]
    #[serde(flatten)]
    options: PresetOptions,
}

/// A preset's options as JSON: the members a multipart upload's fields
/// would be, checked the same way (a number may be a JSON number). Only
/// described: the handler reads the object member by member.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PresetOptions {
    format: Option<Format>,
    #[schema(minimum = 6, maximum = 510)]
    bitrate: Option<u32>,
    #[schema(minimum = 8000, maximum = 192000)]
    sample_rate: Option<u32>,
    #[schema(minimum = 1, maximum = 2)]
    channels: Option<u8>,
    #[schema(value_type = Option<crate::audio::Loudness>)]
    loudness: Option<String>,
    /// Seconds or a clock, as for an upload.
    #[schema(max_length = 16)]
    start: Option<String>,
    #[schema(max_length = 16)]
    end: Option<String>,
    #[schema(minimum = 0, maximum = 9)]
    vbr: Option<u8>,
    #[schema(max_length = 256)]
    title: Option<String>,
    #[schema(max_length = 256)]
    artist: Option<String>,
    #[schema(max_length = 256)]
    album: Option<String>,
    #[schema(max_length = 256)]
    date: Option<String>,
    #[schema(max_length = 9, pattern = "^[0-9]{1,4}(/[0-9]{1,4})?$")]
    track: Option<String>,
    #[schema(max_length = 256)]
    comment: Option<String>,
    #[schema(max_length = 256)]
    genre: Option<String>,
    /// `frame` only: a preset cannot hold a picture.
    #[schema(example = "frame")]
    cover: Option<String>,
    #[schema(max_length = 16)]
    cover_at: Option<String>,
    /// `chapters` only.
    #[schema(example = "chapters")]
    split: Option<String>,
}

// The schema of `wire::ErrorReply`, the body every NATS error reply carries
// as well, described here so that the wire contract carries no HTTP schema.
// Only the schema is used (answers are `wire::ErrorReply` values), so the
// fields are never read.
/// `{"error": {...}}`: the shape of every error answer.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = ErrorReply)]
pub struct ErrorAnswer {
    pub error: ErrorAnswerBody,
}

/// Error body used by every reply and every HTTP error.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = ErrorBody)]
pub struct ErrorAnswerBody {
    /// A stable machine-readable code, such as `invalid_credentials`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
}
