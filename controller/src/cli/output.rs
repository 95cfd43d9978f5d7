//! Printing: kubectl-style tables, YAML and JSON, ages, and stdout writes that
//! treat a closed pipe (`mooring get nodes | head`) as a normal end, never a panic.
//!
//! Commands render into a `String` with these helpers (which keeps them testable)
//! and hand it to [`print`] once.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use serde::Serialize;

use super::jsonpath::JsonPathQuery;

/// `-o` of `get`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Columns for people.
    #[default]
    Table,
    /// The table with more columns.
    Wide,
    /// The documents as YAML.
    Yaml,
    /// The documents as JSON.
    Json,
    /// `kind.mooring/name`, one a line, for scripts (`xargs`).
    Name,
    /// The values a JSONPath query picks out of the JSON output.
    JsonPath(JsonPathQuery),
}

/// The `-o` values, for messages and help.
pub const OUTPUT_FORMATS: &str = "table, wide, yaml, json, name, jsonpath=QUERY";

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(query) = s.strip_prefix("jsonpath=") {
            return JsonPathQuery::parse(query).map(OutputFormat::JsonPath);
        }
        match s {
            "table" => Ok(OutputFormat::Table),
            "wide" => Ok(OutputFormat::Wide),
            "yaml" => Ok(OutputFormat::Yaml),
            "json" => Ok(OutputFormat::Json),
            "name" => Ok(OutputFormat::Name),
            other => Err(format!("unknown output format {other:?}; use one of {OUTPUT_FORMATS}")),
        }
    }
}

/// What kubectl prints for a missing value.
pub const NONE: &str = "<none>";

/// Spaces between table columns, as kubectl uses.
const COLUMN_GAP: u16 = 3;

/// A table without borders: a header row and aligned columns separated by three
/// spaces, no leading or trailing blanks, like `kubectl get`.
pub fn table<H: AsRef<str>>(headers: &[H], rows: &[Vec<String>]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(headers.iter().map(|h| h.as_ref().to_string()).collect::<Vec<_>>());
    for row in rows {
        t.add_row(row.clone());
    }
    for column in t.column_iter_mut() {
        column.set_padding((0, COLUMN_GAP));
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A value as YAML (what `-o yaml` and `describe` print).
pub fn to_yaml<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    let mut s = serde_norway::to_string(value)?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

/// A value as pretty JSON, newline-terminated (what `-o json` prints).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    Ok(s)
}

/// Every line of `text` indented by `n` spaces (blank lines stay empty).
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let mut out = String::new();
    for line in text.lines() {
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// kubectl's short age: `5s`, `3m`, `2h`, `4d`, `1y`. A time slightly in the future
/// (clock skew) shows as `0s`.
pub fn format_age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - since).num_seconds();
    match secs {
        s if s < -1 => "<invalid>".to_string(),
        s if s < 0 => "0s".to_string(),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s if s < 365 * 86_400 => format!("{}d", s / 86_400),
        s => format!("{}y", s / (365 * 86_400)),
    }
}

/// An RFC 3339 timestamp.
pub fn parse_time(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts).ok().map(|t| t.with_timezone(&Utc))
}

/// The age of an RFC 3339 timestamp as of `now`, or `<unknown>` when absent or unreadable.
pub fn age_of(ts: Option<&str>, now: DateTime<Utc>) -> String {
    ts.and_then(parse_time).map(|t| format_age(t, now)).unwrap_or_else(|| "<unknown>".to_string())
}

/// Writes `text` to stdout and flushes. Errors (a closed pipe among them) are
/// returned, not panicked on as `println!` would; see [`is_broken_pipe`].
pub fn print(text: &str) -> io::Result<()> {
    write_to(&mut io::stdout().lock(), text)
}

/// Writes `text` to `w` and flushes.
pub fn write_to(w: &mut impl Write, text: &str) -> io::Result<()> {
    w.write_all(text.as_bytes())?;
    w.flush()
}

/// Whether an error is stdout's reader having gone away (`| head`), which is a
/// normal way for a listing to end, not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn ages_like_kubectl() {
        let now = t0();
        let ago = |d: Duration| format_age(now - d, now);
        assert_eq!(ago(Duration::seconds(0)), "0s");
        assert_eq!(ago(Duration::seconds(5)), "5s");
        assert_eq!(ago(Duration::seconds(59)), "59s");
        assert_eq!(ago(Duration::seconds(60)), "1m");
        assert_eq!(ago(Duration::seconds(3 * 60 + 59)), "3m");
        assert_eq!(ago(Duration::hours(2) + Duration::minutes(30)), "2h");
        assert_eq!(ago(Duration::days(4) + Duration::hours(23)), "4d");
        assert_eq!(ago(Duration::days(800)), "2y");
        assert_eq!(format_age(now + Duration::milliseconds(500), now), "0s");
        assert_eq!(format_age(now + Duration::seconds(10), now), "<invalid>");
    }

    #[test]
    fn ages_of_timestamps() {
        let now = t0();
        assert_eq!(age_of(Some("2023-11-14T22:10:20Z"), now), "3m");
        assert_eq!(age_of(Some("2023-11-14T23:13:20+01:00"), now), "0s");
        assert_eq!(age_of(Some("yesterday"), now), "<unknown>");
        assert_eq!(age_of(None, now), "<unknown>");
    }

    #[test]
    fn tables_have_no_borders() {
        let rows = vec![vec!["gateway".to_string(), "True".to_string()], vec!["a".to_string(), "False".to_string()]];
        assert_eq!(table(&["NAME", "READY"], &rows), "NAME      READY\ngateway   True\na         False\n");
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let err = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing the table");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }

    #[test]
    fn writing_to_a_closed_reader_is_an_error_not_a_panic() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = write_to(&mut Closed, "x\n").unwrap_err();
        assert!(is_broken_pipe(&err.into()));
    }

    #[test]
    fn indents_lines() {
        assert_eq!(indent("a: 1\n\nb: 2\n", 2), "  a: 1\n\n  b: 2\n");
    }
}
