//! A `split=chapters` output: one track per chapter, each encoded from the
//! upload's work file on its own (ffmpeg seeks to the chapter's start, so
//! the cut is exact to the sample and each track's encoder delay is its
//! own, which cutting the whole output's packets would not give), then
//! packed with an `.m3u8` playlist into one zip. The zip stores its entries
//! uncompressed (audio does not compress), so each track is a run of the
//! zip's bytes, served on its own as a range of the object.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{AttemptError, transient};
use super::ffmpeg::{
    Chapters, Encode, Input, Known, MAX_CHAPTERS, MediaPolicy, Pass, Plan, StopIf, spans,
};
use super::pass::Watch;
use super::{Transcoder, id3};
use crate::wire::{OutputSpec, Track};

/// What the tracks of one output are made from.
pub(super) struct Source<'a> {
    /// The output's place among the job's.
    pub n: usize,
    /// The upload's work file.
    pub input: &'a Path,
    /// Where the tracks and the zip are written.
    pub dir: &'a Path,
    pub spec: &'a OutputSpec,
    /// The upload's name without its extension.
    pub stem: &'a str,
    /// What the whole output's encode knew (measurement, input rate and
    /// title, cover), which every track is encoded with too.
    pub known: Known<'a>,
    /// The cover picture to attach, where the format takes it as a stream.
    pub picture: Option<&'a Path>,
}

impl Transcoder {
    /// Encodes one track per chapter of the output (whose audio lasts
    /// `length` seconds) and packs them into a zip; returns its path and
    /// the tracks, with where each lies in the zip. Progress counts the
    /// tracks as the pass `(index, count)` of the job.
    pub(super) async fn split(
        &self,
        watch: &mut Watch<'_>,
        source: &Source<'_>,
        chapters: &Chapters,
        length: f64,
        media: &MediaPolicy,
        (index, count): (usize, usize),
    ) -> Result<(PathBuf, Vec<Track>), AttemptError> {
        if chapters.too_many {
            return Err(AttemptError::Rejected(format!(
                "the input has more than {MAX_CHAPTERS} chapters; `split=chapters` makes at \
                 most {MAX_CHAPTERS} tracks"
            )));
        }
        let spans = spans(&chapters.list, &source.spec.options, length);
        let format = source.spec.format;
        let ext = format.extension();
        let width = spans.len().to_string().len().max(2);
        let output_start = source.spec.options.start.unwrap_or(0.0);
        let mut entries = Vec::with_capacity(spans.len());
        for (k, span) in spans.iter().enumerate() {
            let mut options = source.spec.options.clone();
            // The seek does the start's work; the trim keeps the length.
            options.start = None;
            options.end = Some(span.length);
            options.split = None;
            if let Some(title) = &span.title {
                options.tags.title = Some(title.clone());
            }
            options.tags.track = Some(format!("{}/{}", k + 1, spans.len()));
            let plan = Plan::new(format, options, source.stem);
            let (args, _) = plan.encode_args(&source.known);
            let path = source
                .dir
                .join(format!("output-{}-track-{k}.{ext}", source.n));
            let encode = Encode::start(
                media,
                Pass {
                    input: Input::File(source.input),
                    output: Some(&path),
                    args: &args,
                    picture: source.picture,
                    seek: Some(span.start),
                    stop_if: StopIf::default(),
                },
            )?;
            // Each track is an equal share of the one pass they count as.
            let share = (index * spans.len() + k, count * spans.len());
            let passed = self.pass(watch, &plan, encode, None, share).await?;
            id3::place_comment(format, &path).await?;
            let title = span
                .title
                .clone()
                .unwrap_or_else(|| source.stem.to_string());
            entries.push(Entry {
                name: format!("{:0width$} - {}.{ext}", k + 1, file_safe(&title)),
                path,
                title,
                start: span.start - output_start,
                duration: passed.last.seconds.max(0.0),
            });
        }
        let zip = source.dir.join(format!("output-{}.zip", source.n));
        let playlist = Playlist {
            name: format!("{}.m3u8", file_safe(source.stem)),
            text: playlist(&entries),
        };
        let packed = {
            let (zip, entries) = (zip.clone(), entries.clone());
            tokio::task::spawn_blocking(move || pack(&zip, &entries, &playlist))
                .await
                .map_err(transient("pack the tracks"))?
                .map_err(transient("pack the tracks"))?
        };
        for entry in &entries {
            let _ = tokio::fs::remove_file(&entry.path).await;
        }
        let tracks = entries
            .into_iter()
            .zip(packed)
            .map(|(entry, (offset, bytes))| Track {
                title: entry.title,
                filename: entry.name,
                start_seconds: entry.start,
                duration_seconds: entry.duration,
                offset,
                bytes,
            })
            .collect();
        Ok((zip, tracks))
    }
}

/// One encoded track on its way into the zip.
#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    /// Its name in the zip, and its download's.
    name: String,
    title: String,
    /// Where it starts in the output, in seconds.
    start: f64,
    duration: f64,
}

/// The zip's playlist: its name and text.
struct Playlist {
    name: String,
    text: String,
}

/// A playlist of the tracks as the zip names them: extended M3U in UTF-8,
/// with each track's length and title, and no cue sheet.
fn playlist(entries: &[Entry]) -> String {
    let mut text = String::from("#EXTM3U\n");
    for entry in entries {
        text.push_str(&format!(
            "#EXTINF:{},{}\n{}\n",
            entry.duration.round() as u64,
            entry.title,
            entry.name
        ));
    }
    text
}

/// Writes the tracks and the playlist into a zip at `path`, uncompressed;
/// returns where each track's bytes lie in it (offset, length).
fn pack(
    path: &Path,
    entries: &[Entry],
    playlist: &Playlist,
) -> Result<Vec<(u64, u64)>, zip::result::ZipError> {
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    for entry in entries {
        zip.start_file(entry.name.as_str(), stored)?;
        std::io::copy(&mut std::fs::File::open(&entry.path)?, &mut zip)?;
    }
    zip.start_file(playlist.name.as_str(), stored)?;
    zip.write_all(playlist.text.as_bytes())?;
    zip.finish()?;
    // Where an entry's bytes start is known for sure only from the zip as
    // written (its local header's length depends on the extra fields).
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path)?)?;
    (0..entries.len())
        .map(|n| {
            let file = archive.by_index_raw(n)?;
            let start = file
                .data_start()
                .ok_or(zip::result::ZipError::InvalidArchive(
                    "an entry without data".into(),
                ))?;
            Ok((start, file.compressed_size()))
        })
        .collect()
}

/// A title made safe as a file name on any system: no path separators,
/// no characters Windows refuses, no control characters, at most 80
/// characters; never empty.
fn file_safe(title: &str) -> String {
    let safe: String = title
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .take(80)
        .collect();
    let safe = safe.trim().trim_matches('.').trim();
    if safe.is_empty() {
        "track".to_string()
    } else {
        safe.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_names_are_safe_file_names() {
        assert_eq!(
            file_safe("Part 1: the ../../start?"),
            "Part 1_ the .._.._start_"
        );
        assert_eq!(file_safe(" .. "), "track");
        assert_eq!(file_safe(&"x".repeat(200)).len(), 80);
    }

    #[test]
    fn the_playlist_lists_each_track_with_its_length_and_title() {
        let entry = |name: &str, title: &str, duration| Entry {
            path: PathBuf::new(),
            name: name.into(),
            title: title.into(),
            start: 0.0,
            duration,
        };
        let entries = [
            entry("01 - Intro.mp3", "Intro", 2.01),
            entry("02 - Main.mp3", "Main", 2.99),
        ];
        assert_eq!(
            playlist(&entries),
            "#EXTM3U\n#EXTINF:2,Intro\n01 - Intro.mp3\n#EXTINF:3,Main\n02 - Main.mp3\n"
        );
    }
}
