//! The arguments of `mediajet login` and `mediajet submit`.

use std::path::PathBuf;

use clap::Args;

/// `mediajet login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// The mediajet HTTP API.
    #[arg(long, env = "MEDIAJET_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Your account's email.
    #[arg(long)]
    pub email: String,
    /// Read from here, or else asked for on the terminal (never a flag, so
    /// it stays out of shell history and process lists).
    #[arg(skip = std::env::var("MEDIAJET_PASSWORD").ok())]
    pub password: Option<String>,
}

/// `mediajet submit`.
#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    /// The video to convert.
    pub file: PathBuf,
    /// Output format: mp3, aac, opus, flac or wav.
    #[arg(long, default_value = "mp3")]
    pub format: String,
    /// Bit rate in kbit/s (lossy formats).
    #[arg(long)]
    pub bitrate: Option<u32>,
    /// Sample rate in Hz.
    #[arg(long)]
    pub sample_rate: Option<u32>,
    /// 1 to downmix to mono, 2 for stereo.
    #[arg(long)]
    pub channels: Option<u8>,
    /// Normalize the loudness: podcast, podcast-mono, streaming, ebu-r128,
    /// atsc-a85, or a target such as '{"integrated": -18, "true_peak": -1.5}'.
    #[arg(long)]
    pub loudness: Option<String>,
    /// Start the output here in the input: seconds or a clock (1:30).
    #[arg(long)]
    pub start: Option<String>,
    /// End the output here in the input: seconds or a clock (1:02:03.5).
    #[arg(long)]
    pub end: Option<String>,
    /// Variable bit rate instead of --bitrate: 0 (best) to 9 (smallest).
    #[arg(long)]
    pub vbr: Option<u8>,
    /// `frame`: embed a frame of the video as the cover picture.
    #[arg(long, value_parser = ["frame"])]
    pub cover: Option<String>,
    /// The cover frame's time: seconds or a clock (default: a tenth in).
    #[arg(long, requires = "cover")]
    pub cover_at: Option<String>,
    /// `chapters`: one track per chapter of the input, downloaded as a zip
    /// with a playlist.
    #[arg(long, value_parser = ["chapters"])]
    pub split: Option<String>,
    /// A tag of the audio, KEY=VALUE with KEY one of title, artist, album,
    /// date, track, comment, genre; may be given more than once.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Where the server POSTs the job's end, signed with your job secret
    /// (made with `POST /v1/webhooks/job-secret`).
    #[arg(long)]
    pub notify_url: Option<String>,
    /// Where the audio goes: a file, or a directory for the server's file
    /// name. Default: the server's file name in the current directory.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// The mediajet HTTP API (default: the one `mediajet login` used).
    #[arg(long, env = "MEDIAJET_SERVER")]
    pub server: Option<String>,
    /// Send the upload no faster than this many bytes a second (`500K`,
    /// `2M`), to leave room on a slow uplink.
    #[arg(long, value_parser = parse_rate)]
    pub limit_rate: Option<u64>,
    /// A bearer token (default: the one `mediajet login` saved).
    #[arg(long, env = "MEDIAJET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl SubmitArgs {
    /// The job options asked for, as the server's option names and texts.
    pub fn options(&self) -> Vec<(&'static str, String)> {
        let mut options = vec![("format", self.format.clone())];
        let numbers = [
            ("bitrate", self.bitrate),
            ("sample_rate", self.sample_rate),
            ("channels", self.channels.map(u32::from)),
            ("vbr", self.vbr.map(u32::from)),
        ];
        for (name, value) in numbers {
            if let Some(value) = value {
                options.push((name, value.to_string()));
            }
        }
        let texts = [
            ("loudness", &self.loudness),
            ("start", &self.start),
            ("end", &self.end),
            ("cover", &self.cover),
            ("cover_at", &self.cover_at),
            ("split", &self.split),
            ("notify_url", &self.notify_url),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                options.push((name, value.clone()));
            }
        }
        for (key, value) in &self.tags {
            if let Some(name) = crate::audio::TAG_NAMES.iter().find(|name| *name == key) {
                options.push((name, value.clone()));
            }
        }
        options
    }
}

/// A `--tag`: one of the tags there are, and its value.
fn parse_tag(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    if !crate::audio::TAG_NAMES.contains(&key) {
        return Err(format!(
            "there is no tag `{key}`; use one of {}",
            crate::audio::TAG_NAMES.join(", ")
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// A rate in bytes a second, with an optional `K` or `M` (1024s).
fn parse_rate(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 1024),
        Some((at, 'm' | 'M')) => (&text[..at], 1024 * 1024),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|rate| *rate > 0)
        .ok_or_else(|| format!("`{text}` is not a rate such as 500K or 2M"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        submit: SubmitArgs,
    }

    #[test]
    fn tags_and_options_become_the_server_s_option_names() {
        let parsed = Wrapper::try_parse_from([
            "submit",
            "talk.mp4",
            "--tag",
            "title=Sea trip",
            "--tag",
            "track=2",
            "--vbr",
            "3",
            "--notify-url",
            "https://example.com/hook",
        ])
        .unwrap();
        let options = parsed.submit.options();
        assert!(
            options.contains(&("title", "Sea trip".into())),
            "{options:?}"
        );
        assert!(options.contains(&("track", "2".into())), "{options:?}");
        assert!(options.contains(&("vbr", "3".into())), "{options:?}");
        let hook = ("notify_url", "https://example.com/hook".into());
        assert!(options.contains(&hook), "{options:?}");
        assert!(Wrapper::try_parse_from(["submit", "a.mp4", "--tag", "composer=x"]).is_err());
    }
}
