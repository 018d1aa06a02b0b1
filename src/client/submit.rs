//! `mediajet submit`: check where the audio goes, upload (`upload`, with a
//! progress bar), follow the job's live events, download the audio.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::args::SubmitArgs;
use super::credentials::Credentials;
use super::error::{ClientError, error_of, unavailable};
use super::events::EventStream;
use super::job::{Job, Output};
use super::progress::{bar, describe};
use super::session::{Client, http};
use crate::wire::JobState;

/// Uploads, follows and downloads one job; returns where the audio went.
pub async fn submit(args: SubmitArgs) -> Result<PathBuf, ClientError> {
    // A destination that cannot be written is refused before the upload,
    // not found out once the audio is ready.
    check_destination(args.output.as_deref(), args.force)?;
    let saved = Credentials::load();
    let server = args
        .server
        .clone()
        .or_else(|| saved.as_ref().map(|c| c.server.clone()))
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
    let server = server.trim_end_matches('/').to_string();
    // A token given on the command line is used as it is; saved credentials
    // are renewed with their refresh token when the access token runs out.
    let credentials = match (&args.token, saved) {
        (Some(token), _) => Credentials {
            server: server.clone(),
            token: token.clone(),
            refresh_token: None,
            expires_at: None,
        },
        (None, Some(saved)) => saved,
        (None, None) => {
            return Err(ClientError::Refused(
                "not logged in: run `mediajet login --email …` or set MEDIAJET_TOKEN".into(),
            ));
        }
    };
    let client = Client {
        http: http()?,
        server,
        credentials: Mutex::new(credentials),
    };
    client.renew_if_expiring().await?;
    let job = client.upload(&args).await?;
    println!("job {} queued", job.id);
    let job = client.follow(&job.id).await?;
    let output = match (job.state, job.output) {
        (JobState::Completed, Some(output)) => output,
        (JobState::Canceled, _) => return Err(ClientError::Canceled),
        (_, _) => {
            let reason = job.error.as_deref().unwrap_or("no reason given");
            return Err(ClientError::JobFailed(reason.to_string()));
        }
    };
    let path = client.download(&output, &args).await?;
    println!("completed: {}", path.display());
    Ok(path)
}

/// Refuses an `--output` the audio could not be written to: a directory
/// (a path ending in a separator) that does not exist, a file whose
/// directory does not exist, or a file that exists without `--force`.
fn check_destination(output: Option<&Path>, force: bool) -> Result<(), ClientError> {
    let Some(output) = output else {
        return Ok(());
    };
    if output.is_dir() {
        return Ok(());
    }
    let text = output.as_os_str().to_string_lossy();
    if text.ends_with(std::path::MAIN_SEPARATOR) || text.ends_with('/') {
        return Err(ClientError::Refused(format!(
            "{} is not a directory",
            output.display()
        )));
    }
    let parent = output
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(ClientError::Refused(format!(
            "{} is not a directory, so {} cannot be written",
            parent.display(),
            output.display()
        )));
    }
    if output.exists() && !force {
        return Err(ClientError::Refused(format!(
            "{} exists; pass --force to replace it, or --output",
            output.display()
        )));
    }
    Ok(())
}

impl Client {
    /// Follows the job's events until it ends, reconnecting when the stream
    /// breaks; returns the job in its terminal state.
    async fn follow(&self, id: &str) -> Result<Job, ClientError> {
        let progress = bar(100, "{msg:28} [{bar:30}] {pos}%");
        let mut failures = 0;
        loop {
            let url = self.url(&format!("/v1/jobs/{id}/events"));
            let response = self
                .send(|token| self.http.get(&url).bearer_auth(token))
                .await;
            let response = match response {
                Ok(response) if response.status().is_success() => response,
                Ok(response) if response.status().is_client_error() => {
                    return Err(error_of(response).await);
                }
                Ok(_) | Err(ClientError::Unavailable { .. }) if failures < 30 => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Ok(response) => return Err(error_of(response).await),
                Err(err) => return Err(err),
            };
            let mut events = EventStream::new(response.bytes_stream().boxed());
            while let Some(job) = events.next_data::<Job>().await {
                failures = 0;
                progress.set_position(job.progress as u64);
                progress.set_message(describe(&job));
                if job.state.is_terminal() {
                    progress.finish_and_clear();
                    return Ok(job);
                }
            }
            // The stream broke off before the end: pick it up again.
            failures += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn download(&self, output: &Output, args: &SubmitArgs) -> Result<PathBuf, ClientError> {
        // Only the base name: the server's name must not pick a directory.
        let filename = Path::new(&output.filename)
            .file_name()
            .map_or_else(|| "output".into(), |n| n.to_os_string());
        let path = match &args.output {
            Some(dir) if dir.is_dir() => dir.join(filename),
            Some(path) => path.clone(),
            None => PathBuf::from(filename),
        };
        if path.exists() && !args.force {
            return Err(ClientError::Refused(format!(
                "{} exists; pass --force to replace it, or --output",
                path.display()
            )));
        }
        let url = self.url(&output.url);
        let response = self
            .send(|token| self.http.get(&url).bearer_auth(token))
            .await?;
        if !response.status().is_success() {
            return Err(error_of(response).await);
        }
        let progress = bar(
            response.content_length().unwrap_or(0),
            "download [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        );
        // Written next to the target and renamed at the end, so a broken
        // download leaves no half file under the real name.
        let partial = path.with_extension("part");
        let io = |what: &str| {
            let what = format!("{what} {}", partial.display());
            move |e| ClientError::Io(what, e)
        };
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(io("cannot create"))?;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(unavailable(&self.server)(err));
                }
            };
            file.write_all(&chunk).await.map_err(io("cannot write"))?;
            progress.inc(chunk.len() as u64);
        }
        file.flush().await.map_err(io("cannot write"))?;
        drop(file);
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(io("cannot rename"))?;
        progress.finish_and_clear();
        Ok(path)
    }
}
