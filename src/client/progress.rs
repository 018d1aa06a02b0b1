//! Progress bars and the one line that says where a job stands.

use indicatif::{ProgressBar, ProgressStyle};

use super::job::Job;
use crate::wire::JobState;

pub(super) fn bar(length: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// One line about a job: its place in the queue, or its speed and ETA.
pub(super) fn describe(job: &Job) -> String {
    match job.state {
        JobState::Queued => match job.queue_position {
            Some(1) => "queued, next".to_string(),
            Some(place) => format!("queued, {} ahead", place.saturating_sub(1)),
            None => "queued".to_string(),
        },
        JobState::Running => match (job.speed, job.eta_seconds) {
            (Some(speed), Some(eta)) => format!("converting {speed:.1}x, {eta:.0}s left"),
            _ => "converting".to_string(),
        },
        other => other.as_str().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_described_by_its_queue_place_or_its_speed() {
        let job = |v: serde_json::Value| {
            let mut v = v;
            v["id"] = "j".into();
            describe(&serde_json::from_value(v).unwrap())
        };
        assert_eq!(
            job(serde_json::json!({"state": "queued", "queue_position": 3})),
            "queued, 2 ahead"
        );
        assert_eq!(
            job(serde_json::json!({"state": "queued", "queue_position": 1})),
            "queued, next"
        );
        assert_eq!(
            job(serde_json::json!({"state": "running", "speed": 41.25, "eta_seconds": 3.0})),
            "converting 41.2x, 3s left"
        );
        assert_eq!(job(serde_json::json!({"state": "completed"})), "completed");
    }
}
