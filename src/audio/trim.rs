//! Trims: where in the input the output starts and ends, given as seconds
//! (`90`, `90.5`) or a clock (`1:30`, `01:02:03.250`).

/// Longest time accepted, in seconds: far past any input the media policy
/// lets through, and small enough to stay exact in milliseconds.
const MAX_SECONDS: f64 = 360_000.0;

/// Reads a time, to the millisecond.
pub fn parse_time(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    let parts: Vec<&str> = text.split(':').collect();
    let (seconds, clock) = parts.split_last()?;
    if clock.len() > 2 {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = seconds.split_once('.').unwrap_or((seconds, "0"));
    if !digits(int) || !digits(frac) || frac.len() > 3 {
        return None;
    }
    let seconds: f64 = seconds.parse().ok()?;
    let mut total = 0.0;
    for (at, part) in clock.iter().enumerate() {
        if !digits(part) {
            return None;
        }
        let value: f64 = part.parse().ok()?;
        // Minutes after hours stay under 60.
        if at > 0 && value >= 60.0 {
            return None;
        }
        total = total * 60.0 + value;
    }
    // Seconds after a colon stay under 60.
    if !clock.is_empty() && seconds >= 60.0 {
        return None;
    }
    let total = total * 60.0 + seconds;
    (total <= MAX_SECONDS).then_some((total * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_seconds_or_clocks_to_the_millisecond() {
        assert_eq!(parse_time("90"), Some(90.0));
        assert_eq!(parse_time(" 90.5 "), Some(90.5));
        assert_eq!(parse_time("1:30"), Some(90.0));
        assert_eq!(parse_time("01:02:03.250"), Some(3723.25));
        assert_eq!(parse_time("0:00.001"), Some(0.001));
        for bad in [
            "", "-1", "1:60", "1:75:00", "abc", "1.2.3", "1:2:3:4", "0.0001", "1e3", "99999999",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
