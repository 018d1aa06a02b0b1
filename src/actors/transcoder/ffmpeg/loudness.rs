//! Two-pass loudness normalization. The first pass measures the input with
//! `loudnorm`; the second applies one gain when the measured peaks and
//! range allow it (the dynamics stay as they were), and otherwise lets
//! `loudnorm` normalize dynamically with the measured values, its
//! true-peak limiter on. `ebur128` measures what the second pass hands to
//! the encoder.

use serde::Deserialize;

use crate::audio::{LoudnessStats, LoudnessTarget, Normalization};

/// Peak headroom kept for lossy encoders, whose decoded output overshoots
/// the peaks they were given (mp3 by up to about a decibel).
pub const LOSSY_HEADROOM_DB: f64 = 1.0;

/// Lowest values reported, for silence (which measures as `-inf`).
const FLOOR_LUFS: f64 = -70.0;
const FLOOR_DBTP: f64 = -99.0;

/// The input as the first pass measured it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub stats: LoudnessStats,
    /// The gate `loudnorm` needs back in its second pass.
    pub threshold: f64,
}

/// The first pass's filter.
pub fn measure_filter(target: LoudnessTarget) -> String {
    format!(
        "loudnorm=I={}:TP={}:LRA={}:print_format=json",
        target.integrated, target.true_peak, target.lra
    )
}

/// Reads `loudnorm`'s JSON report from the first pass's last log lines.
pub fn parse_measurement(lines: &[String]) -> Option<Measured> {
    #[derive(Deserialize)]
    struct Report {
        input_i: String,
        input_tp: String,
        input_lra: String,
        input_thresh: String,
    }
    let start = lines.iter().rposition(|line| line.trim() == "{")?;
    let end = start + lines[start..].iter().position(|line| line.trim() == "}")?;
    let report: Report = serde_json::from_str(&lines[start..=end].join("\n")).ok()?;
    let number = |text: &str, floor: f64| {
        let value = text.trim().parse::<f64>().ok()?;
        Some(if value.is_finite() {
            value.max(floor)
        } else {
            floor
        })
    };
    Some(Measured {
        stats: LoudnessStats {
            integrated: number(&report.input_i, FLOOR_LUFS)?,
            true_peak: number(&report.input_tp, FLOOR_DBTP)?,
            lra: number(&report.input_lra, 0.0)?,
        },
        threshold: number(&report.input_thresh, FLOOR_LUFS)?,
    })
}

/// The second pass's normalizing filter, with `headroom` dB kept below the
/// target's peak ceiling.
pub fn normalize_filter(
    target: LoudnessTarget,
    measured: Measured,
    headroom: f64,
) -> (String, Normalization) {
    let ceiling = (target.true_peak - headroom).max(-9.0);
    // Silence stays silence: there is nothing to measure, or to raise.
    if measured.stats.integrated <= FLOOR_LUFS {
        return ("volume=0dB".into(), Normalization::Linear);
    }
    let gain = target.integrated - measured.stats.integrated;
    if measured.stats.true_peak + gain <= ceiling && measured.stats.lra <= target.lra {
        return (format!("volume={gain:.2}dB"), Normalization::Linear);
    }
    let filter = format!(
        "loudnorm=I={}:TP={ceiling}:LRA={}:measured_I={:.2}:measured_TP={:.2}:\
         measured_LRA={:.2}:measured_thresh={:.2}:linear=true",
        target.integrated,
        target.lra,
        measured.stats.integrated,
        measured.stats.true_peak.clamp(-99.0, 99.0),
        measured.stats.lra.min(99.0),
        measured.threshold,
    );
    (filter, Normalization::Dynamic)
}

/// The filter that measures the second pass's result as it goes to the
/// encoder; its per-frame lines are kept out of the log.
pub const OUTPUT_METER: &str = "ebur128=peak=true:framelog=verbose";

/// Reads the summary [`OUTPUT_METER`] logs at the end of the pass.
pub fn parse_output(lines: &[String]) -> Option<LoudnessStats> {
    let start = lines.iter().rposition(|line| line.contains("Summary:"))?;
    let value = |label: &str| {
        lines[start..].iter().find_map(|line| {
            let rest = line.trim().strip_prefix(label)?;
            let number = rest.split_whitespace().next()?.parse::<f64>().ok()?;
            Some(number)
        })
    };
    let finite = |value: f64, floor: f64| {
        if value.is_finite() {
            value.max(floor)
        } else {
            floor
        }
    };
    Some(LoudnessStats {
        integrated: finite(value("I:")?, FLOOR_LUFS),
        true_peak: finite(value("Peak:")?, FLOOR_DBTP),
        lra: finite(value("LRA:")?, 0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    const FIRST_PASS: &str = r#"[Parsed_loudnorm_0 @ 0x5561de89d5c0]
{
	"input_i" : "-26.02",
	"input_tp" : "-19.59",
	"input_lra" : "1.00",
	"input_thresh" : "-36.91",
	"output_i" : "-16.00",
	"output_tp" : "-12.93",
	"output_lra" : "0.10",
	"output_thresh" : "-26.00",
	"normalization_type" : "dynamic",
	"target_offset" : "0.00"
}"#;

    const SECOND_PASS: &str = "[Parsed_ebur128_1 @ 0x55fd1ab53180] Summary:

  Integrated loudness:
    I:         -16.1 LUFS
    Threshold: -35.1 LUFS

  Loudness range:
    LRA:         1.2 LU
    Threshold: -45.2 LUFS
    LRA low:   -25.9 LUFS
    LRA high:  -24.7 LUFS

  True peak:
    Peak:       -9.6 dBFS";

    fn podcast() -> LoudnessTarget {
        crate::audio::LoudnessPreset::Podcast.target()
    }

    #[test]
    fn the_first_pass_report_is_read_and_a_quiet_input_is_raised_linearly() {
        let measured = parse_measurement(&lines(FIRST_PASS)).unwrap();
        assert_eq!(measured.stats.integrated, -26.02);
        assert_eq!(measured.threshold, -36.91);
        let (filter, kind) = normalize_filter(podcast(), measured, LOSSY_HEADROOM_DB);
        assert_eq!(filter, "volume=10.02dB");
        assert_eq!(kind, Normalization::Linear);
    }

    #[test]
    fn peaks_that_a_gain_would_push_over_the_ceiling_are_normalized_dynamically() {
        let mut measured = parse_measurement(&lines(FIRST_PASS)).unwrap();
        measured.stats.true_peak = -6.0;
        let (filter, kind) = normalize_filter(podcast(), measured, LOSSY_HEADROOM_DB);
        assert_eq!(kind, Normalization::Dynamic);
        assert!(
            filter.contains("TP=-2:") && filter.contains("measured_I=-26.02"),
            "{filter}"
        );
    }

    #[test]
    fn silence_is_left_as_it_is_and_reports_no_infinities() {
        let silent = FIRST_PASS
            .replace("-26.02", "-inf")
            .replace("-19.59", "-inf");
        let measured = parse_measurement(&lines(&silent)).unwrap();
        assert_eq!(measured.stats.integrated, FLOOR_LUFS);
        assert_eq!(normalize_filter(podcast(), measured, 0.0).0, "volume=0dB");
    }

    #[test]
    fn the_output_meter_summary_is_read() {
        let stats = parse_output(&lines(SECOND_PASS)).unwrap();
        assert_eq!(stats.integrated, -16.1);
        assert_eq!(stats.lra, 1.2);
        assert_eq!(stats.true_peak, -9.6);
        assert_eq!(parse_output(&lines("no summary")), None);
    }
}
