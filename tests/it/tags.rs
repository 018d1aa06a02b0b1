//! Tags read back by mutagen (tests/audio/tags.py) for mp3, m4a, FLAC and
//! Opus: those the job gives, those it leaves to the input, and the file
//! name as the title when neither has one.

use std::path::Path;

use serde_json::Value;

use crate::common::{self, TestApp};

/// What mutagen reads in `path`.
pub fn mutagen(path: &Path) -> Value {
    common::python_json("audio/tags.py", &[path.as_os_str()])
}

/// A video whose container has `tags` of its own.
fn tagged_video(dir: &Path, name: &str, tags: &[&str]) -> std::path::PathBuf {
    let mut codecs = vec!["-c:v", "mpeg4", "-c:a", "aac"];
    for tag in tags {
        codecs.extend(["-metadata", tag]);
    }
    common::lavfi_video(dir, name, 2, "size=160x120:rate=10", &codecs)
}

async fn converted_tags(
    app: &TestApp,
    token: &str,
    video: &Path,
    fields: &[(&str, &str)],
) -> Value {
    let id = app.submit_with(token, video, fields).await;
    let job = app.wait_until_finished(token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    mutagen(&app.save_output(token, &job).await)
}

#[tokio::test]
async fn the_tags_a_job_gives_are_written_in_each_container_s_own_form() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 2);
    let tags = [
        ("title", "Vorlesung 3 — Über Klang"),
        ("artist", "Ann Example"),
        ("album", "Akustik"),
        ("date", "2026-12-04"),
        ("track", "3/12"),
        ("comment", "Recorded live"),
        ("genre", "Speech"),
    ];
    for (format, container) in [
        ("mp3", "MP3"),
        ("aac", "MP4"),
        ("flac", "FLAC"),
        ("opus", "OggOpus"),
    ] {
        let mut fields = vec![("format", format)];
        fields.extend(tags);
        let read = converted_tags(&app, &token, &video, &fields).await;
        assert_eq!(read["container"], container, "{read}");
        for (name, value) in tags {
            assert_eq!(read["tags"][name], value, "{format} {name}: {read}");
        }
        if format == "mp3" {
            assert_eq!(read["id3_version"], "2.4.0", "{read}");
            // The comment is in a COMM frame, where players look, and not
            // also in the user text frame ffmpeg 5.1 writes it to.
            assert_eq!(read["txxx_comment"], Value::Null, "{read}");
        }
    }
}

#[tokio::test]
async fn tags_left_out_come_from_the_input_and_a_missing_title_from_the_file_name() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let titled = tagged_video(
        app.dir.path(),
        "titled.mp4",
        &[
            "title=Source Title",
            "artist=Source Artist",
            "genre=Lecture",
        ],
    );
    // One pass: stopped once the input shows its title, and run again
    // without the file name's.
    let read = converted_tags(&app, &token, &titled, &[("artist", "Ann")]).await;
    assert_eq!(read["tags"]["title"], "Source Title", "{read}");
    assert_eq!(read["tags"]["artist"], "Ann", "{read}");
    assert_eq!(read["tags"]["genre"], "Lecture", "{read}");
    // Two passes: the first, which measures, says whether there is a title.
    let fields = [("format", "flac"), ("loudness", "podcast")];
    let read = converted_tags(&app, &token, &titled, &fields).await;
    assert_eq!(read["tags"]["title"], "Source Title", "{read}");
    assert_eq!(read["tags"]["artist"], "Source Artist", "{read}");

    let untitled = tagged_video(app.dir.path(), "My Lecture.mp4", &["artist=Someone"]);
    for fields in [
        &[("format", "opus")][..],
        &[("format", "aac"), ("loudness", "streaming")],
    ] {
        let read = converted_tags(&app, &token, &untitled, fields).await;
        assert_eq!(read["tags"]["title"], "My Lecture", "{fields:?}: {read}");
        assert_eq!(read["tags"]["artist"], "Someone", "{fields:?}: {read}");
    }
}
