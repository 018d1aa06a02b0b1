//! The shipped alert rules (`ops/prometheus/alerts.yml`) as promtool checks
//! them, and their unit tests (`alerts.test.yml`): each alert fires where it
//! should and stays quiet where it should not.

use std::path::Path;

use crate::common::promtool;

fn rules_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/prometheus")
}

#[test]
fn the_alert_rules_pass_promtool_check_rules() {
    let (passed, printed) = promtool(&["check", "rules", "alerts.yml"], None, &rules_dir());
    assert!(passed, "{printed}");
    assert!(printed.contains("SUCCESS"), "{printed}");
}

#[test]
fn every_alert_fires_and_stays_quiet_as_its_unit_tests_say() {
    let (passed, printed) = promtool(&["test", "rules", "alerts.test.yml"], None, &rules_dir());
    assert!(passed, "{printed}");
    // Every alert of the rules file has cases of its own.
    let rules = std::fs::read_to_string(rules_dir().join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(rules_dir().join("alerts.test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 9, "{alerts:?}");
    // Each case is an `alertname:` line followed by its `exp_alerts:`,
    // which is `[]` for a quiet case and a list for a firing one.
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    let cases: Vec<(&str, bool)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let alert = line.strip_prefix("alertname: ")?;
            let expected = lines[i + 1..]
                .iter()
                .find(|l| l.starts_with("exp_alerts:"))?;
            Some((alert, *expected != "exp_alerts: []"))
        })
        .collect();
    for alert in alerts {
        for (fires, kind) in [(true, "firing"), (false, "quiet")] {
            assert!(
                cases.contains(&(alert, fires)),
                "{alert} has no {kind} test case"
            );
        }
    }
}
