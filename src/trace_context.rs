//! W3C trace context (`traceparent`), carried from the request that submits
//! a job, through the work item and the job's events, to its email: every
//! log line about the job, in any actor and any process, carries the same
//! `trace_id`. A client's own `traceparent` is continued; without one, a
//! trace starts at the edge.

/// The header, in HTTP and in NATS messages.
pub const TRACEPARENT: &str = "traceparent";

/// One hop of a trace: the trace's id and the id of the span that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
}

impl TraceContext {
    /// A new trace.
    pub fn new() -> Self {
        let mut trace_id = [0u8; 16];
        let mut parent_id = [0u8; 8];
        // A random source that fails leaves zeros, which the format
        // forbids: fall back to the clock, so that the ids still differ.
        if getrandom::getrandom(&mut trace_id).is_err() || trace_id == [0; 16] {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos());
            trace_id = now.max(1).to_be_bytes();
        }
        if getrandom::getrandom(&mut parent_id).is_err() || parent_id == [0; 8] {
            parent_id = [1; 8];
        }
        TraceContext {
            trace_id,
            parent_id,
        }
    }

    /// The context a `traceparent` value names (version 00 and its future
    /// extensions), or `None` for anything malformed.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version.eq_ignore_ascii_case("ff") || flags.len() != 2 {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = decode_hex(trace)?;
        let parent_id: [u8; 8] = decode_hex(parent)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            parent_id,
        })
    }

    /// The context `headers` carry, or a new trace.
    pub fn from_nats(headers: Option<&async_nats::HeaderMap>) -> Self {
        headers
            .and_then(|h| h.get(TRACEPARENT))
            .and_then(|v| Self::parse(v.as_str()))
            .unwrap_or_default()
    }

    /// The same trace, one hop further.
    pub fn child(&self) -> Self {
        let mut next = TraceContext::new();
        next.trace_id = self.trace_id;
        next
    }

    /// The trace's id, as logs show it.
    pub fn trace_id(&self) -> String {
        crate::hex::encode(&self.trace_id)
    }

    /// The `traceparent` value of this hop.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-01",
            crate::hex::encode(&self.trace_id),
            crate::hex::encode(&self.parent_id)
        )
    }

    /// NATS headers carrying the next hop of this trace.
    pub fn nats_headers(&self) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(TRACEPARENT, self.child().header().as_str());
        headers
    }
}

impl Default for TraceContext {
    fn default() -> Self {
        TraceContext::new()
    }
}

/// `text` as exactly `N` bytes of lowercase hex.
fn decode_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut bytes = [0u8; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_and_its_children_keep_the_trace() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(header).unwrap();
        assert_eq!(context.header(), header);
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = context.child();
        assert_eq!(child.trace_id(), context.trace_id());
        assert_ne!(child.header(), context.header());
        assert_ne!(
            TraceContext::new().trace_id(),
            TraceContext::new().trace_id()
        );
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }
}
