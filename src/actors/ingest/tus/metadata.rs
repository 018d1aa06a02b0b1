//! `Upload-Metadata`: the file name and the job options of a resumable
//! upload, as comma-separated `key base64(value)` pairs. The same options,
//! checked the same way, as the fields of a multipart upload.

use base64::Engine;

use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::submission::{self, Asked, Fields};
use crate::wire::{AudioOptions, Format};

/// Longest `Upload-Metadata` header read.
pub(crate) const MAX_METADATA: usize = 4096;
/// Longest value of one pair, decoded.
const MAX_VALUE: usize = 256;
/// Longest `outputs` value, decoded: a list of several outputs' options.
const MAX_OUTPUTS_VALUE: usize = 2048;

/// What a creation's metadata asks for.
#[derive(Debug, PartialEq)]
pub(crate) struct Requested {
    pub filename: String,
    pub asked: Asked,
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest("bad_upload_metadata", message)
}

/// The refusal of an `Upload-Metadata` header that is not visible ASCII.
pub(crate) fn not_text() -> ApiError {
    bad("`Upload-Metadata` must be ASCII text".into())
}

/// The pairs of `Upload-Metadata`, bounded and decoded.
pub(crate) fn pairs(header: Option<&str>) -> Result<Vec<(&str, Vec<u8>)>, ApiError> {
    let header = header.unwrap_or_default();
    if header.len() > MAX_METADATA {
        return Err(bad(format!(
            "`Upload-Metadata` may be at most {MAX_METADATA} bytes long"
        )));
    }
    let mut pairs = Vec::new();
    for pair in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
        let value = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad("an `Upload-Metadata` value is not base64".into()))?;
        let limit = match key {
            "outputs" => MAX_OUTPUTS_VALUE,
            submission::NOTIFY_URL => crate::targets::MAX_URL,
            _ => MAX_VALUE,
        };
        if value.len() > limit {
            return Err(bad(format!(
                "the `Upload-Metadata` value of `{}` may be at most {limit} bytes long",
                key.chars().take(32).collect::<String>()
            )));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn text(value: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(value.to_vec())
        .map_err(|_| bad("an `Upload-Metadata` value is not UTF-8 text".into()))
}

/// The preset the metadata names, if any: the base its options are laid
/// over.
pub(crate) fn preset(pairs: &[(&str, Vec<u8>)]) -> Result<Option<String>, ApiError> {
    pairs
        .iter()
        .find(|(key, _)| *key == "preset")
        .map(|(_, value)| text(value))
        .transpose()
}

/// Reads `Upload-Metadata` over `base` (the named preset's format and
/// options, or an mp3's defaults). Unknown keys (`filetype`, say) are
/// allowed and ignored; absent, the upload is called `upload`.
pub(crate) fn parse(
    pairs: &[(&str, Vec<u8>)],
    base: (Format, AudioOptions),
) -> Result<Requested, ApiError> {
    let mut filename = None;
    let mut fields = Fields::over(base);
    for (key, value) in pairs {
        match *key {
            // tus-js-client's examples send `filename`, Uppy sends `name` too.
            "filename" | "name" => filename = Some(text(value)?),
            key if Fields::takes(key) => {
                fields.set(key, &text(value)?)?;
            }
            _ => {}
        }
    }
    Ok(Requested {
        filename: submission::clean_filename(filename.as_deref()),
        asked: fields.finish()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metadata read over an mp3's defaults.
    fn read(header: Option<&str>) -> Result<Requested, ApiError> {
        parse(&pairs(header)?, (Format::Mp3, AudioOptions::default()))
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn metadata_names_the_file_and_the_options() {
        let header = format!(
            "filename {},format {},bitrate {},filetype {},is_confidential,title {}",
            b64("../talk.mp4"),
            b64("opus"),
            b64("96k"),
            b64("video/mp4"),
            b64("Sea trip")
        );
        let asked = read(Some(&header)).expect("valid metadata");
        assert_eq!(asked.filename, "talk.mp4");
        assert_eq!(asked.asked.format, Format::Opus);
        assert_eq!(asked.asked.options.bitrate, Some(96));
        assert_eq!(asked.asked.options.tags.title.as_deref(), Some("Sea trip"));
        assert_eq!(read(None).expect("no metadata").asked.format, Format::Mp3);
        let long = format!("https://example.com/hooks/{}", "a".repeat(400));
        let header = format!("notify_url {}", b64(&long));
        let asked = read(Some(&header)).expect("a long notify_url");
        assert_eq!(asked.asked.notify_url.as_deref(), Some(long.as_str()));
        let header = format!("notify_url {}", b64("ftp://example.com/"));
        assert!(read(Some(&header)).is_err());
    }

    #[test]
    fn bad_metadata_is_refused() {
        for header in [
            "filename not*base64".to_string(),
            format!("format {}", b64("midi")),
            format!("bitrate {}", b64("fast")),
            format!("filename {}", b64(&"x".repeat(MAX_VALUE + 1))),
            "k ".repeat(MAX_METADATA),
        ] {
            assert!(read(Some(&header)).is_err(), "{header:.60}");
        }
    }
}
