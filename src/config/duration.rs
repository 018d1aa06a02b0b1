//! Durations on the command line: `30s`, `5m`, `2h`, `7d`, `250ms` or
//! plain seconds, and the bounded lifetimes of tokens.

use std::time::Duration;

/// Parses `30s`, `5m`, `2h`, `250ms` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s, 5m or 2h"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        "d" => Ok(Duration::from_secs(n * 24 * 3600)),
        _ => Err(format!(
            "`{text}` has an unknown unit; use ms, s, m, h or d"
        )),
    }
}

fn parse_bounded(text: &str, most: Duration) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() || duration > most {
        return Err(format!(
            "`{text}` must be more than 0 and at most {}d",
            most.as_secs() / (24 * 3600)
        ));
    }
    Ok(duration)
}

/// Access tokens must expire before their session's revocation does.
pub(super) fn parse_access_ttl(text: &str) -> Result<Duration, String> {
    parse_bounded(text, crate::storage::buckets::REVOKED_MAX_AGE)
}

/// Sessions must expire before their entry in the sessions bucket does.
pub(super) fn parse_refresh_ttl(text: &str) -> Result<Duration, String> {
    parse_bounded(text, crate::storage::buckets::SESSIONS_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes_are_bounded_by_their_buckets() {
        assert_eq!(parse_access_ttl("15m"), Ok(Duration::from_secs(900)));
        assert!(parse_access_ttl("2d").is_err());
        assert!(parse_access_ttl("0").is_err());
        assert!(parse_refresh_ttl("90d").is_ok());
        assert!(parse_refresh_ttl("91d").is_err());
    }

    #[test]
    fn durations_accept_units_and_plain_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 24 * 3600)));
        assert!(parse_duration("3w").is_err());
    }
}
