//! Reading the API's change stream (`GET /v1/watch`, Server-Sent Events) for
//! `get -w`: bytes arrive in arbitrary chunks; [`SseReader`] turns them into
//! the `data:` payloads of complete events, and [`Change`] is what one says.

use serde::Deserialize;

/// One change the watch stream reports (`docs/api.md`, "Watch").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Change {
    /// The kind (`Relay`).
    pub kind: String,
    /// The namespace; empty for a cluster-scoped policy.
    #[serde(default)]
    pub namespace: String,
    /// The resource's name.
    pub name: String,
    /// `create`, `update`, `status`, `delete-requested`, `delete` or `event`.
    pub op: String,
}

/// Splits an SSE byte stream into event payloads; comments (keep-alives) and
/// events without data are skipped.
#[derive(Debug, Default)]
pub struct SseReader {
    buffer: String,
}

impl SseReader {
    /// Adds a chunk; returns the `data` of every event it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk).replace("\r\n", "\n"));
        let mut out = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let event: String = self.buffer.drain(..end + 2).collect();
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks() {
        let mut r = SseReader::default();
        assert!(r.push(b": keep-alive\n\nid: 4\nevent: change\nda").is_empty());
        let got = r.push(b"ta: {\"kind\":\"Relay\",\"name\":\"gw\",\"op\":\"update\"}\n\nid: 5\r\ndata: x\r\n\r\n");
        assert_eq!(got, vec![r#"{"kind":"Relay","name":"gw","op":"update"}"#.to_string(), "x".to_string()]);
        let change: Change = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(
            change,
            Change { kind: "Relay".into(), namespace: String::new(), name: "gw".into(), op: "update".into() }
        );
    }
}
