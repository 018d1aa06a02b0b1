//! Following a bucket into memory with a KV watch that starts over
//! whenever it ends.

use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Mirrors a bucket into memory: `apply` sees every entry from the first
/// on, then every change, in a background task that starts over whenever
/// the watch ends, until the returned guard is dropped. Waits (5 s at most)
/// until the entries that existed at the start have been applied, so a
/// process that just started does not act on a stale picture.
pub(super) async fn mirror_bucket(
    store: kv::Store,
    what: &'static str,
    apply: impl Fn(&kv::Entry) + Send + 'static,
) -> DropGuard {
    let stop = CancellationToken::new();
    let (caught_up, known) = tokio::sync::oneshot::channel();
    tokio::spawn(follow_bucket(store, what, apply, caught_up, stop.clone()));
    if tokio::time::timeout(Duration::from_secs(5), known)
        .await
        .is_err()
    {
        tracing::warn!(
            bucket = what,
            "not loaded yet; carrying on while the watch catches up"
        );
    }
    stop.drop_guard()
}

async fn follow_bucket(
    store: kv::Store,
    what: &'static str,
    apply: impl Fn(&kv::Entry),
    caught_up: tokio::sync::oneshot::Sender<()>,
    stop: CancellationToken,
) {
    let mut caught_up = Some(caught_up);
    loop {
        let watch = tokio::select! {
            _ = stop.cancelled() => return,
            watch = store.watch_with_history(">") => watch,
        };
        // An empty bucket has no last entry to wait for.
        let empty = store
            .stream
            .clone()
            .info()
            .await
            .is_ok_and(|info| info.state.messages == 0);
        if empty && let Some(caught_up) = caught_up.take() {
            let _ = caught_up.send(());
        }
        match watch {
            Ok(mut watch) => loop {
                let entry = tokio::select! {
                    _ = stop.cancelled() => return,
                    entry = watch.next() => entry,
                };
                match entry {
                    Some(Ok(entry)) => {
                        apply(&entry);
                        if entry.delta == 0
                            && let Some(caught_up) = caught_up.take()
                        {
                            let _ = caught_up.send(());
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(bucket = what, error = %err, "watch broke off; starting over");
                        break;
                    }
                    None => break,
                }
            },
            Err(err) => tracing::warn!(bucket = what, error = %err, "cannot watch; retrying"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
