//! A reader of `text/event-stream` bodies: the JSON data of each event.

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;

pub struct EventStream {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl EventStream {
    pub fn new(body: BoxStream<'static, reqwest::Result<Bytes>>) -> Self {
        EventStream {
            body,
            buffer: Vec::new(),
        }
    }

    /// The data of the next event whose JSON is a `T`, or `None` when the
    /// stream ends or breaks.
    pub async fn next_data<T: DeserializeOwned>(&mut self) -> Option<T> {
        loop {
            while let Some(end) = find_blank_line(&self.buffer) {
                let block: Vec<u8> = self.buffer.drain(..end).collect();
                if let Some(value) = parse_block(&block) {
                    return Some(value);
                }
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(_)) | None => return None,
            }
        }
    }
}

/// The end (exclusive, blank line included) of the first complete event.
fn find_blank_line(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The JSON data of one event block as a `T`, ignoring comments and other
/// fields.
fn parse_block<T: DeserializeOwned>(block: &[u8]) -> Option<T> {
    let text = String::from_utf8_lossy(block);
    let data: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data.join("\n")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_split_across_chunks_and_keep_alives_are_read() {
        let chunks: Vec<reqwest::Result<Bytes>> = vec![
            Ok(Bytes::from_static(
                b": keep-alive\n\nevent: state\ndata: {\"state\"",
            )),
            Ok(Bytes::from_static(
                b":\"queued\"}\nid: 4\n\nevent: progress\r\n",
            )),
            Ok(Bytes::from_static(b"data: {\"progress\":50}\r\n\r\n")),
        ];
        let mut events = EventStream::new(futures::stream::iter(chunks).boxed());
        let first: serde_json::Value = events.next_data().await.unwrap();
        assert_eq!(first["state"], "queued");
        let second: serde_json::Value = events.next_data().await.unwrap();
        assert_eq!(second["progress"], 50);
        assert!(events.next_data::<serde_json::Value>().await.is_none());
    }
}
