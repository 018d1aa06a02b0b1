//! The email of a job's end: plain text and HTML (with a download button
//! per output, each a signed link), a `Message-ID` made from the job (so a
//! resend after a crash is the same message to the recipient's client), and
//! a one-click `List-Unsubscribe` (RFC 8058) that turns the user's
//! notifications off.

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

use crate::error::BoxError;
use crate::markup::escape;
use crate::token::links::Links;
use crate::wire::{Job, JobState, Output};

/// What every email is made with.
pub(super) struct Composer<'a> {
    pub from: &'a Mailbox,
    pub links: &'a Links,
    /// The service's public address, without a trailing slash.
    pub public_url: &'a str,
}

/// One link the email offers: what it is, and where.
struct Download {
    label: String,
    url: String,
}

impl Composer<'_> {
    /// The email telling `owner` (their user id and address) how `job`
    /// ended.
    pub fn compose(&self, job: &Job, owner: &str, to: &str) -> Result<Message, BoxError> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let status_url = format!("{}/v1/jobs/{}", self.public_url, job.id);
        let unsubscribe = self.links.unsubscribe_url(owner);
        let (subject, text, html) = match job.state {
            JobState::Completed => {
                let downloads = self.downloads(job);
                let lines: String = downloads
                    .iter()
                    .map(|d| format!("{}: {}\n", d.label, d.url))
                    .collect();
                let text = format!(
                    "Hello,\n\nyour file {} has been converted to {}.\n\n{lines}\n\
                     The links work without logging in until the audio is removed; anyone \
                     you pass them on to can use them.\n\nJob: {}\nDetails: {status_url}\n\n\
                     -- mediajet\nNo more of these emails: {unsubscribe}\n",
                    job.filename,
                    formats(job),
                    job.id,
                );
                let buttons: String = downloads
                    .iter()
                    .map(|d| {
                        format!(
                            "<p><a href=\"{}\" style=\"display:inline-block;padding:10px 18px;\
                             background:#2f6fed;color:#fff;border-radius:6px;\
                             text-decoration:none\">{}</a></p>",
                            escape(&d.url),
                            escape(&d.label)
                        )
                    })
                    .collect();
                let html = page(
                    &format!(
                        "<p>Your file <strong>{}</strong> has been converted to {}.</p>{buttons}\
                         <p style=\"color:#667085\">The links work without logging in until \
                         the audio is removed; anyone you pass them on to can use them.</p>",
                        escape(&job.filename),
                        escape(&formats(job)),
                    ),
                    &status_url,
                    &unsubscribe,
                );
                (format!("Your audio is ready: {}", job.filename), text, html)
            }
            _ => {
                let reason = job.error.as_deref().unwrap_or("unknown");
                let text = format!(
                    "Hello,\n\nyour file {} could not be converted.\n\nJob: {}\nState: failed\n\
                     Reason: {reason}\nDetails: {status_url}\n\n-- mediajet\n\
                     No more of these emails: {unsubscribe}\n",
                    job.filename, job.id,
                );
                let html = page(
                    &format!(
                        "<p>Your file <strong>{}</strong> could not be converted.</p>\
                         <p>Reason: {}</p>",
                        escape(&job.filename),
                        escape(reason),
                    ),
                    &status_url,
                    &unsubscribe,
                );
                (format!("Conversion failed: {}", job.filename), text, html)
            }
        };
        let host = self
            .public_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .filter(|host| !host.is_empty())
            .unwrap_or("mediajet.invalid");
        let header = |name: &'static str, value: String| {
            HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{}.{}@{host}>", job.id, job.state.as_str())))
            .raw_header(header("List-Unsubscribe", format!("<{unsubscribe}>")))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ))
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(BoxError::from)
    }

    /// A completed job's downloads: one for a job with one output, one per
    /// output for several; a split output is a zip of its tracks.
    fn downloads(&self, job: &Job) -> Vec<Download> {
        let results: Vec<&Output> = job.results().collect();
        let several = results.len() > 1;
        results
            .iter()
            .enumerate()
            .map(|(n, output)| {
                let mut label = match several {
                    true => {
                        let mb = output.bytes as f64 / 1_000_000.0;
                        format!("{} ({mb:.1} MB)", output.filename)
                    }
                    false => "Download".to_string(),
                };
                if !output.tracks.is_empty() {
                    let tracks = format!("a zip of {} tracks and a playlist", output.tracks.len());
                    label = match several {
                        true => format!("{label}, {tracks}"),
                        false => format!("{label} ({tracks})"),
                    };
                }
                Download {
                    label,
                    url: self.links.url(job, n, None).unwrap_or_default(),
                }
            })
            .collect()
    }
}

/// The formats a job made, in words: `mp3`, `mp3 and flac`.
fn formats(job: &Job) -> String {
    let names: Vec<&str> = job.specs().map(|spec| spec.format.extension()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The HTML around an email's `body`.
fn page(body: &str, status_url: &str, unsubscribe: &str) -> String {
    format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;color:#1d2330\">\
         <p>Hello,</p>{body}<p><a href=\"{}\">The job</a></p>\
         <p style=\"color:#667085;font-size:small\">-- mediajet · \
         <a href=\"{}\">No more of these emails</a></p></body></html>",
        escape(status_url),
        escape(unsubscribe)
    )
}
