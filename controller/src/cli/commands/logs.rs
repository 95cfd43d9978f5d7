//! `mooring logs relay|worker NAME [-f] [--container C] [--since 10m]`: what
//! the workload's containers wrote, read by the server from CloudWatch Logs
//! under the token's namespace scopes (no AWS credentials needed here). With
//! `-f`, follows: asks again every [`FOLLOW_EVERY`] for lines after the last
//! one seen, like `aws logs tail --follow`.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use desired_state::api::logs::{LogLine, LogPage};

use super::Target;
use crate::cli::client::{ApiClient, LogsQuery};
use crate::cli::duration::parse_duration;

/// How often `-f` asks for new lines.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// Arguments of `logs`.
#[derive(Args, Debug, Clone)]
pub struct LogsArgs {
    /// The relay, worker or node (`logs: cloudwatch`).
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

/// How far back each `-f` ask reaches before the newest line printed: the
/// `awslogs` driver buffers, so one task's older lines can arrive after
/// another's newer ones. Lines are printed once, by their id.
pub const LATE_LINES: Duration = Duration::from_secs(10);

/// The ids of the lines printed, within [`LATE_LINES`] (and some) of the newest.
#[derive(Default)]
struct Seen {
    newest: Option<DateTime<Utc>>,
    ids: HashMap<String, DateTime<Utc>>,
}

impl Seen {
    /// Whether `line` is new; remembers it.
    fn admit(&mut self, line: &LogLine) -> bool {
        if self.ids.contains_key(&line.id) {
            return false;
        }
        self.ids.insert(line.id.clone(), line.time);
        if self.newest.is_none_or(|t| line.time > t) {
            self.newest = Some(line.time);
        }
        true
    }

    /// Where the next ask starts; forgets ids too old to be answered again.
    fn next_since(&mut self, since: DateTime<Utc>) -> DateTime<Utc> {
        let Some(newest) = self.newest else { return since };
        let window = chrono::Duration::from_std(LATE_LINES).unwrap_or_else(|_| chrono::Duration::seconds(10));
        let from = (newest - window).max(since);
        self.ids.retain(|_, t| *t >= from - window);
        from
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
            let page: LogPage = match client.logs(target.kind, target.ns(), &target.name, &query).await {
                Ok(page) => page,
                // Following, a busy or unreachable server is waited out.
                Err(e) if args.follow && e.is_transient() => {
                    tokio::time::sleep(e.retry_after().unwrap_or(FOLLOW_EVERY)).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(notice) = page.notice.filter(|_| !noticed) {
                eprintln!("{notice}");
                noticed = true;
            }
            print_lines(page.events.iter().filter(|l| seen.admit(l)), args.prefix)?;
            next = page.next;
            if next.is_none() {
                break;
            }
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        since = seen.next_since(since);
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// Prints lines, each prefixed with `[container]` when asked.
fn print_lines<'a>(lines: impl Iterator<Item = &'a LogLine>, prefix: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        let message = line.message.trim_end_matches('\n');
        match (&line.container, prefix) {
            (Some(c), true) => writeln!(out, "[{c}] {message}")?,
            _ => writeln!(out, "{message}")?,
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, ms: i64, message: &str) -> LogLine {
        LogLine {
            id: id.into(),
            time: DateTime::from_timestamp_millis(ms).unwrap(),
            container: Some("app".into()),
            stream: "app/app/1".into(),
            message: message.into(),
        }
    }

    #[test]
    fn follow_prints_each_line_once_late_ones_included() {
        let mut seen = Seen::default();
        // Table: the lines of successive answers (each asks again from a little
        // before the newest line) → printed. Same text twice is two lines.
        let answers = [
            (vec![line("1", 1_000, "a"), line("2", 2_000, "-"), line("3", 2_000, "-")], vec!["a", "-", "-"]),
            (vec![line("2", 2_000, "-"), line("3", 2_000, "-"), line("4", 2_000, "d")], vec!["d"]),
            (vec![line("5", 1_500, "late"), line("4", 2_000, "d"), line("6", 3_000, "e")], vec!["late", "e"]),
        ];
        for (lines, want) in answers {
            let printed: Vec<&str> = lines.iter().filter(|l| seen.admit(l)).map(|l| l.message.as_str()).collect();
            assert_eq!(printed, want);
        }
        let start = DateTime::from_timestamp_millis(0).unwrap();
        assert_eq!(seen.next_since(start), start, "never before where the reading began");
        let later = DateTime::from_timestamp_millis(60_000).unwrap();
        seen.admit(&line("7", 60_000, "f"));
        assert_eq!(seen.next_since(start), later - chrono::Duration::from_std(LATE_LINES).unwrap());
        assert_eq!(seen.ids.len(), 1, "ids far behind the window are forgotten");
    }
}
