//! A floor under the speed of an upload: a client that sends less than the
//! configured rate over a window (or stalls for a whole window) is cut off,
//! so a slow trickle cannot hold a connection, an upload slot and its
//! memory for hours.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::time::Instant;

/// The window over which an upload's rate is judged.
pub const WINDOW: Duration = Duration::from_secs(30);

/// `body`, failing with [`std::io::ErrorKind::TimedOut`] once a window
/// passes in which fewer than `bytes_per_second` per second arrived.
pub fn at_least<S>(body: S, bytes_per_second: u64) -> impl Stream<Item = std::io::Result<Bytes>>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    let floor = bytes_per_second.saturating_mul(WINDOW.as_secs());
    futures::stream::unfold(
        Some((body, Instant::now(), 0u64)),
        move |state| async move {
            let (mut body, mut since, mut seen) = state?;
            loop {
                match tokio::time::timeout_at(since + WINDOW, body.next()).await {
                    Ok(Some(Ok(chunk))) => {
                        seen += chunk.len() as u64;
                        return Some((Ok(chunk), Some((body, since, seen))));
                    }
                    // The end, or the body's own error (which ends it too).
                    Ok(end) => return end.map(|failed| (failed, None)),
                    Err(_) if seen < floor => {
                        let slow = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the upload is too slow",
                        );
                        return Some((Err(slow), None));
                    }
                    Err(_) => (since, seen) = (Instant::now(), 0),
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_body_slower_than_the_floor_fails_and_a_fast_one_passes() {
        // One byte every 10 s: 3 bytes a window against a floor of 30.
        let trickle = futures::stream::unfold(0, |sent| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Some((Ok(Bytes::from_static(b"x")), sent + 1))
        })
        .boxed();
        let outcome: Vec<std::io::Result<Bytes>> = at_least(trickle, 1).collect().await;
        let last = outcome.last().expect("something arrived");
        assert!(
            matches!(last, Err(err) if err.kind() == std::io::ErrorKind::TimedOut),
            "{outcome:?}"
        );

        let steady = futures::stream::iter((0..100).map(|_| Ok(Bytes::from_static(&[0; 1024]))));
        let outcome: Vec<std::io::Result<Bytes>> = at_least(steady, 1).collect().await;
        assert_eq!(outcome.len(), 100);
        assert!(outcome.iter().all(Result::is_ok));
    }
}
