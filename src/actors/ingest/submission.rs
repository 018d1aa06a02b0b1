//! What makes a submission valid, whether it comes over HTTP or NATS: the
//! format and its options, the file name the job shows; and the job made
//! from it. The caller's caps (unfinished jobs, upload size, storage
//! quota) are `quota`'s.

use time::OffsetDateTime;

use super::error::ApiError;
use crate::audio::{Cover, Loudness, Split, TAG_NAMES, parse_time};
use crate::domain::JobId;
use crate::token::Claims;
use crate::wire::{self, AudioOptions, FORMATS, Format, Job, JobState, MAX_OUTPUTS, OutputSpec};

/// A format the caller named, or a 400 that lists the formats there are.
fn parse_format(text: &str) -> Result<Format, ApiError> {
    Format::parse(text).ok_or_else(|| {
        let names: Vec<&str> = FORMATS.iter().map(|f| f.name()).collect();
        // Echo a short name back, not whatever a client sent.
        let asked: String = text.chars().take(32).collect();
        ApiError::BadRequest(
            "unsupported_format",
            format!(
                "unsupported format `{asked}`; use one of {}",
                names.join(", ")
            ),
        )
    })
}

/// The format a submission names, mp3 when it names none.
pub(super) fn format_named(text: Option<&str>) -> Result<Format, ApiError> {
    text.map_or(Ok(Format::Mp3), parse_format)
}

/// The error code of a refused option: it names the option, but for the
/// bit rate and sample rate, whose code came first and stays.
fn option_code(option: &str) -> &'static str {
    match option {
        "loudness" => "invalid_loudness",
        "channels" => "invalid_channels",
        "start" => "invalid_start",
        "end" => "invalid_end",
        "vbr" => "invalid_vbr",
        "cover" => "invalid_cover",
        "cover_at" => "invalid_cover_at",
        "split" => "invalid_split",
        "title" => "invalid_title",
        "artist" => "invalid_artist",
        "album" => "invalid_album",
        "date" => "invalid_date",
        "track" => "invalid_track",
        "comment" => "invalid_comment",
        "genre" => "invalid_genre",
        _ => "invalid_options",
    }
}

/// Refuses options the format cannot encode, saying what it takes.
pub(super) fn check_options(format: Format, options: &AudioOptions) -> Result<(), ApiError> {
    format
        .check(options)
        .map_err(|err| ApiError::BadRequest(option_code(err.option), err.message))
}

/// The encoding options a form field or metadata pair may set, by name
/// (besides the tags, [`TAG_NAMES`]).
const OPTION_FIELDS: [&str; 10] = [
    "bitrate",
    "sample_rate",
    "channels",
    "loudness",
    "start",
    "end",
    "vbr",
    "cover",
    "cover_at",
    "split",
];

/// Whether a form field or metadata pair called `name` is an option.
pub(super) fn is_option(name: &str) -> bool {
    OPTION_FIELDS.contains(&name) || TAG_NAMES.contains(&name)
}

/// Sets the option `name` (one of [`OPTION_FIELDS`]) from its text, as a
/// multipart field or a tus metadata value gives it.
pub(super) fn set_option(
    options: &mut AudioOptions,
    name: &str,
    text: &str,
) -> Result<(), ApiError> {
    let text = text.trim();
    match name {
        "bitrate" => options.bitrate = Some(parse_number(name, text, Some('k'))?),
        "sample_rate" => options.sample_rate = Some(parse_number(name, text, None)?),
        "channels" => {
            let channels = parse_number(name, text, None)
                .map_err(|_| refused("channels", "`channels` must be 1 or 2".into()))?;
            options.channels = Some(u8::try_from(channels).unwrap_or(u8::MAX));
        }
        "loudness" => {
            options.loudness =
                Some(Loudness::parse(text).map_err(|message| refused("loudness", message))?)
        }
        "start" | "end" | "cover_at" => {
            let seconds = parse_time(text).ok_or_else(|| refused(name, bad_time(name)))?;
            match name {
                "start" => options.start = Some(seconds),
                "end" => options.end = Some(seconds),
                _ => options.cover_at = Some(seconds),
            }
        }
        "cover" => {
            if options.cover.is_some() {
                return Err(refused("cover", cover_twice()));
            }
            if !text.eq_ignore_ascii_case("frame") {
                return Err(refused(
                    "cover",
                    "`cover` is `frame` (a frame of the video) or a JPEG or PNG file part".into(),
                ));
            }
            options.cover = Some(Cover::Frame);
        }
        "split" => {
            if !text.eq_ignore_ascii_case("chapters") {
                return Err(refused(
                    "split",
                    "`split` is `chapters` (one track per chapter of the input)".into(),
                ));
            }
            options.split = Some(Split::Chapters);
        }
        "vbr" => {
            let vbr = parse_number(name, text, None)
                .map_err(|_| refused("vbr", "`vbr` must be 0 (best) to 9 (smallest)".into()))?;
            options.vbr = Some(u8::try_from(vbr).unwrap_or(u8::MAX));
        }
        tag => {
            if TAG_NAMES.contains(&tag) {
                options
                    .tags
                    .set(tag, text)
                    .map_err(|message| refused(tag, message))?;
            }
        }
    }
    Ok(())
}

/// The format and options a JSON object names, each member read as its
/// form field would be (a number or an object as its JSON text), over
/// `base`. Members that are no option are refused.
pub(super) fn options_from_json(
    object: &serde_json::Map<String, serde_json::Value>,
    base: (Format, AudioOptions),
) -> Result<(Format, AudioOptions), ApiError> {
    let mut fields = Fields::over(base);
    for (name, value) in object {
        if name == NOTIFY_URL {
            return Err(ApiError::BadRequest(
                "invalid_notify_url",
                "`notify_url` belongs to a job, not to one of its outputs or a preset".into(),
            ));
        }
        if name == "outputs" {
            return Err(ApiError::BadRequest(
                "invalid_outputs",
                "`outputs` lists a job's outputs; a preset, or one entry of `outputs`, \
                 holds the options of one"
                    .into(),
            ));
        }
        if !fields.set_json(name, value)? {
            return Err(unknown_option(name));
        }
    }
    check_options(fields.format, &fields.options)?;
    Ok((fields.format, fields.options))
}

/// The outputs a JSON object (a NATS submission) asks for, each member read
/// as its form field would be, over `base`. Members that are none of a
/// submission's are refused.
pub(super) fn asked_from_json(
    object: &serde_json::Map<String, serde_json::Value>,
    base: (Format, AudioOptions),
) -> Result<Asked, ApiError> {
    let mut fields = Fields::over(base);
    for (name, value) in object {
        if !fields.set_json(name, value)? {
            return Err(unknown_option(name));
        }
    }
    fields.finish()
}

/// Longest `outputs` text read, on every way in.
pub(super) const MAX_OUTPUTS_TEXT: usize = 4096;

/// The field naming where a job's end is POSTed.
pub(super) const NOTIFY_URL: &str = "notify_url";

/// A submission's outputs: the first (the job's `format` and `options`) and
/// any more; and where its end is POSTed, if anywhere.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Asked {
    pub format: Format,
    pub options: AudioOptions,
    pub more: Vec<OutputSpec>,
    pub notify_url: Option<String>,
}

impl Asked {
    /// One output, and no `notify_url`.
    pub fn single(format: Format, options: AudioOptions) -> Asked {
        Asked {
            format,
            options,
            more: Vec::new(),
            notify_url: None,
        }
    }
}

/// A submission's format and options as its fields are read, in whatever
/// order they come. `outputs` is kept as text until the end, since the
/// other fields are the defaults each of its entries is laid over.
#[derive(Clone)]
pub(super) struct Fields {
    pub format: Format,
    pub options: AudioOptions,
    outputs: Option<String>,
    notify_url: Option<String>,
}

impl Fields {
    pub fn over((format, options): (Format, AudioOptions)) -> Fields {
        Fields {
            format,
            options,
            outputs: None,
            notify_url: None,
        }
    }

    /// Whether a field called `name` is one of a submission's.
    pub fn takes(name: &str) -> bool {
        name == "format" || name == "outputs" || name == NOTIFY_URL || is_option(name)
    }

    /// Reads the field `name` from its text; false when it is none of a
    /// submission's.
    pub fn set(&mut self, name: &str, text: &str) -> Result<bool, ApiError> {
        match name {
            "format" => self.format = format_named(Some(text.trim()))?,
            "outputs" if text.len() > MAX_OUTPUTS_TEXT => {
                return Err(ApiError::BadRequest(
                    "invalid_outputs",
                    format!("`outputs` may be at most {MAX_OUTPUTS_TEXT} bytes of JSON"),
                ));
            }
            "outputs" => self.outputs = Some(text.to_string()),
            NOTIFY_URL => self.notify_url = Some(notify_url(text)?),
            name if is_option(name) => set_option(&mut self.options, name, text)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// [`Fields::set`] from a JSON member: a string as its text, a number,
    /// object or list as its JSON text.
    pub fn set_json(&mut self, name: &str, value: &serde_json::Value) -> Result<bool, ApiError> {
        match value {
            serde_json::Value::String(text) => self.set(name, text),
            serde_json::Value::Null => Ok(Fields::takes(name)),
            other => self.set(name, &other.to_string()),
        }
    }

    /// The outputs asked for, each checked against its format.
    pub fn finish(self) -> Result<Asked, ApiError> {
        let base = (self.format, self.options);
        let Some(text) = self.outputs else {
            check_options(base.0, &base.1)?;
            let mut asked = Asked::single(base.0, base.1);
            asked.notify_url = self.notify_url;
            return Ok(asked);
        };
        let bad = |message: String| ApiError::BadRequest("invalid_outputs", message);
        let entries: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|_| {
            bad("`outputs` must be a JSON list of objects, each a `format` and options".into())
        })?;
        if entries.is_empty() || entries.len() > MAX_OUTPUTS {
            return Err(bad(format!(
                "`outputs` must list 1 to {MAX_OUTPUTS} outputs, not {}",
                entries.len()
            )));
        }
        let mut specs = Vec::with_capacity(entries.len());
        for (n, entry) in entries.iter().enumerate() {
            let serde_json::Value::Object(object) = entry else {
                return Err(bad(format!("`outputs[{n}]` must be an object")));
            };
            let (format, options) = options_from_json(object, base.clone())
                .map_err(|err| err.within(&format!("outputs[{n}]")))?;
            specs.push(OutputSpec { format, options });
        }
        let mut specs = specs.into_iter();
        let first = specs
            .next()
            .ok_or_else(|| bad("`outputs` is empty".into()))?;
        Ok(Asked {
            format: first.format,
            options: first.options,
            more: specs.collect(),
            notify_url: self.notify_url,
        })
    }
}

/// A `notify_url` as given: an http(s) URL without credentials. Whether its
/// address may be reached is the caller's to check
/// (`Ingest::check_notify_url`).
fn notify_url(text: &str) -> Result<String, ApiError> {
    crate::targets::parse(text.trim())
        .map(|url| url.to_string())
        .map_err(|e| ApiError::BadRequest("invalid_notify_url", e.to_string()))
}

/// The refusal of a member that is no option.
fn unknown_option(name: &str) -> ApiError {
    let name: String = name.chars().take(32).collect();
    ApiError::BadRequest("unknown_option", format!("there is no option `{name}`"))
}

/// The refusal of a second `cover`.
pub(super) fn cover_twice() -> String {
    "give `cover` once: a picture or `frame`".into()
}

/// What a time must look like.
pub(super) fn bad_time(name: &str) -> String {
    format!(
        "`{name}` must be seconds (`90.5`) or a clock (`1:30`, `01:02:03.250`), at most 100 hours"
    )
}

/// The refusal of an option's value.
pub(super) fn refused(option: &str, message: String) -> ApiError {
    ApiError::BadRequest(option_code(option), message)
}

/// A whole number from a form field, with an optional unit suffix (`128k`).
pub(super) fn parse_number(field: &str, text: &str, suffix: Option<char>) -> Result<u32, ApiError> {
    let digits = suffix
        .and_then(|unit| {
            text.strip_suffix(unit)
                .or_else(|| text.strip_suffix(unit.to_ascii_uppercase()))
        })
        .unwrap_or(text);
    digits.parse().map_err(|_| {
        ApiError::BadRequest(
            "invalid_options",
            format!("`{field}` must be a whole number, not `{text}`"),
        )
    })
}

/// Keeps the base name of a client-supplied file name, without control
/// characters, at most 200 characters.
pub(super) fn clean_filename(name: Option<&str>) -> String {
    let base = name
        .unwrap_or("upload")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("upload");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() {
        "upload".to_string()
    } else {
        clean
    }
}

/// The refusal of an upload with nothing in it.
pub(super) fn empty_file() -> ApiError {
    ApiError::BadRequest("empty_file", "the uploaded file is empty".into())
}

/// A fresh job for an upload of `input_bytes` whose owner has `quota`
/// bytes left: the audio may take what the upload leaves of it.
pub(super) fn new_job(
    id: JobId,
    owner: &Claims,
    asked: Asked,
    filename: String,
    input_bytes: u64,
    quota: u64,
) -> Job {
    let now = OffsetDateTime::now_utc();
    Job {
        v: wire::VERSION,
        id,
        owner: owner.sub.clone(),
        owner_email: owner.email.clone(),
        state: JobState::Queued,
        progress: 0.0,
        speed: None,
        eta_seconds: None,
        format: asked.format,
        options: asked.options,
        more_outputs: asked.more,
        filename,
        input_bytes,
        upload: None,
        work_seq: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
        attempts: 0,
        retries: 0,
        max_output_bytes: Some(quota.saturating_sub(input_bytes)),
        streamed_from: None,
        error: None,
        output: None,
        more_results: Vec::new(),
        waveform: None,
        link_generation: 0,
        notify_url: asked.notify_url,
        artwork_bytes: None,
        source_url: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_their_directories_and_control_characters() {
        assert_eq!(clean_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_filename(Some("C:\\videos\\clip.mp4")), "clip.mp4");
        assert_eq!(clean_filename(Some("a\nb.mp4")), "ab.mp4");
        assert_eq!(clean_filename(None), "upload");
        assert_eq!(clean_filename(Some("")), "upload");
    }
}
