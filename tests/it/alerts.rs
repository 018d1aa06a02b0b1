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
    assert!(alerts.len() >= 8, "{alerts:?}");
    for alert in alerts {
        let cases = tests.matches(&format!("alertname: {alert}")).count();
        assert!(
            cases >= 2,
            "{alert} has {cases} test cases, not a firing and a quiet one"
        );
    }
}
