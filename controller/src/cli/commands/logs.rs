//! `mooring logs relay|worker NAME [-f] [--container C] [--since 10m]`: what
//! the workload's containers wrote, read by the server from CloudWatch Logs
//! under the token's namespace scopes (no AWS credentials needed here). With
//! `-f`, follows: asks again every [`FOLLOW_EVERY`] for lines after the last
//! one seen, like `aws logs tail --follow`.

use std::collections::HashSet;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Deserialize;

use super::Target;
use crate::cli::client::{ApiClient, LogsQuery};
use crate::cli::duration::parse_duration;

/// How often `-f` asks for new lines.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// Arguments of `logs`.
#[derive(Args, Debug, Clone)]
pub struct LogsArgs {
    /// The relay or worker.
    #[command(flatten)]
    pub target: Target,
    /// Keep printing new lines until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    /// Only this container's lines (a sidecar's, say).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Lines of the last DURATION (`30s`, `10m`, `2h`).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = since_parser)]
    pub since: Duration,
    /// Prefix each line with its container.
    #[arg(long)]
    pub prefix: bool,
}

fn since_parser(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// One page as the API answers it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogPage {
    #[serde(default)]
    pub events: Vec<LogLine>,
    pub next: Option<String>,
    pub notice: Option<String>,
}

/// One line.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
pub struct LogLine {
    pub time: DateTime<Utc>,
    pub container: Option<String>,
    pub stream: String,
    pub message: String,
}

/// Lines already printed at the newest time seen: the next ask starts at that
/// time again (CloudWatch Logs' times are in milliseconds, and more lines may
/// share the last one), and these are not printed twice.
#[derive(Default)]
struct Seen {
    newest: Option<DateTime<Utc>>,
    at_newest: HashSet<LogLine>,
}

impl Seen {
    /// Whether `line` is new; remembers it.
    fn admit(&mut self, line: &LogLine) -> bool {
        match self.newest {
            Some(t) if line.time < t => false,
            Some(t) if line.time == t => self.at_newest.insert(line.clone()),
            _ => {
                self.newest = Some(line.time);
                self.at_newest = HashSet::from([line.clone()]);
                true
            }
        }
    }
}

/// Runs `logs`.
pub async fn run(client: &ApiClient, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let target = &args.target;
    let mut seen = Seen::default();
    let mut since = Utc::now() - chrono::Duration::from_std(args.since).unwrap_or_else(|_| chrono::Duration::hours(1));
    let mut noticed = false;
    loop {
        let mut next = None;
        loop {
            let query = LogsQuery { container: args.container.clone(), since_time: Some(since), next: next.clone() };
            let page: LogPage = client.logs(target.kind, target.ns(), &target.name, &query).await?;
            if let Some(notice) = page.notice.filter(|_| !noticed) {
                eprintln!("{notice}");
                noticed = true;
            }
            let mut out = std::io::stdout().lock();
            for line in page.events.iter().filter(|l| seen.admit(l)) {
                match (&line.container, args.prefix) {
                    (Some(c), true) => writeln!(out, "[{c}] {}", line.message.trim_end_matches('\n'))?,
                    _ => writeln!(out, "{}", line.message.trim_end_matches('\n'))?,
                }
            }
            out.flush()?;
            next = page.next;
            if next.is_none() {
                break;
            }
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(t) = seen.newest {
            since = t;
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ms: i64, message: &str) -> LogLine {
        LogLine {
            time: DateTime::from_timestamp_millis(ms).unwrap(),
            container: Some("app".into()),
            stream: "app/app/1".into(),
            message: message.into(),
        }
    }

    #[test]
    fn follow_prints_each_line_once() {
        let mut seen = Seen::default();
        // Table: the lines of successive answers (each asks again from the newest time) → printed.
        let answers = [
            (vec![line(1, "a"), line(2, "b"), line(2, "c")], vec!["a", "b", "c"]),
            (vec![line(2, "b"), line(2, "c"), line(2, "d")], vec!["d"]),
            (vec![line(2, "d"), line(3, "e")], vec!["e"]),
            (vec![line(1, "late"), line(3, "e")], vec![]),
        ];
        for (lines, want) in answers {
            let printed: Vec<&str> = lines.iter().filter(|l| seen.admit(l)).map(|l| l.message.as_str()).collect();
            assert_eq!(printed, want);
        }
    }
}
