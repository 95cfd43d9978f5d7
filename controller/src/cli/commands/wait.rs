//! `mooring wait`: poll a resource until a condition holds (or it is gone), with a
//! spinner showing the current condition (or, when stderr is not a terminal, a line
//! each time it changes); also the polling loop `delete --wait` uses. A wait stops
//! early, with exit 1 and the reason, when the resource reports a failure that
//! waiting alone cannot clear ([`crate::cli::terminal`]).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use api_types::condition::ConditionType;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio::time::Instant;

use super::Target;
use crate::cli::client::{ApiClient, ClientError};
use crate::cli::duration::{format_duration, parse_duration};
use crate::cli::output;
use crate::cli::resource::{condition, str_at};
use crate::cli::terminal::terminal_failure;

/// How often the resource is read.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Arguments of `wait`.
#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    /// The resource.
    #[command(flatten)]
    pub target: Target,
    /// What to wait for: `condition=TYPE` (status True), `condition=TYPE=STATUS`, or
    /// `delete`. TYPE is one of Ready, Synced, Progressing, Degraded, Drifted.
    #[arg(long = "for", value_name = "CONDITION")]
    pub for_: WaitFor,
    /// Give up after this long (30s, 10m, 1h).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// The state `wait` waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitFor {
    /// A status condition (`Ready`) with a status (`True`).
    Condition { type_: ConditionType, status: String },
    /// The resource no longer exists.
    Delete,
}

impl FromStr for WaitFor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("delete") {
            return Ok(WaitFor::Delete);
        }
        let Some(rest) = s.strip_prefix("condition=") else {
            return Err(format!("{s:?}: expected condition=TYPE, condition=TYPE=STATUS or delete"));
        };
        let (type_, status) = match rest.split_once('=') {
            Some((t, st)) => (t, st),
            None => (rest, "True"),
        };
        if type_.is_empty() || status.is_empty() {
            return Err(format!("{s:?}: expected condition=TYPE, condition=TYPE=STATUS or delete"));
        }
        let type_ = condition_type(type_)?;
        let status = match status.to_ascii_lowercase().as_str() {
            "true" => "True",
            "false" => "False",
            "unknown" => "Unknown",
            _ => return Err(format!("{s:?}: the status must be True, False or Unknown")),
        };
        Ok(WaitFor::Condition { type_, status: status.to_string() })
    }
}

/// The condition type named `name` (any case); an unknown name is refused with
/// the list of known ones, so `wait` never waits out its timeout for a condition
/// no resource ever reports.
fn condition_type(name: &str) -> Result<ConditionType, String> {
    ConditionType::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(name)).ok_or_else(|| {
        let known: Vec<&str> = ConditionType::ALL.iter().map(|t| t.as_str()).collect();
        format!("unknown condition type {name:?}; the known ones are {}", known.join(", "))
    })
}

/// One look at the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Done; the text is what to print.
    Done(String),
    /// Not yet; the text says where things stand (shown by the spinner, and on timeout).
    Pending(String),
    /// Never, unless someone acts: the text says why (a terminal failure).
    Failed(String),
}

/// Runs `wait`: exit 0 when the state is reached; an error on timeout naming the last status.
pub async fn run(client: &ApiClient, args: WaitArgs) -> anyhow::Result<ExitCode> {
    let target = &args.target;
    let what = match &args.for_ {
        WaitFor::Condition { type_, status } => format!("{} to be {}={status}", target.display(), type_.as_str()),
        WaitFor::Delete => format!("{} to be deleted", target.display()),
    };
    let message = wait_until(&what, args.timeout, async || check_once(client, target, &args.for_).await).await?;
    output::print(&format!("{message}\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the resource once and says whether `for_` holds.
pub async fn check_once(client: &ApiClient, target: &Target, for_: &WaitFor) -> Result<Check, ClientError> {
    let reference = target.reference();
    match client.get(target.kind, target.ns(), &target.name).await {
        Ok(res) => Ok(match for_ {
            WaitFor::Condition { type_, status } => evaluate(&res, type_.as_str(), status, &reference),
            WaitFor::Delete => deletion_pending(&res),
        }),
        Err(e) if e.is_not_found() && *for_ == WaitFor::Delete => Ok(Check::Done(format!("{reference} deleted"))),
        Err(e) => Err(e),
    }
}

/// Whether `res` has condition `type_` at `status` for its current generation. A
/// condition computed for an older generation does not count: right after an
/// apply, `Ready=True` may still describe the previous spec. When the condition
/// does not hold and the resource reports a terminal failure, the wait is over.
pub fn evaluate(res: &Value, type_: &str, status: &str, reference: &str) -> Check {
    match holds(res, type_, status, reference) {
        Check::Pending(state) => match terminal_failure(res) {
            Some(failure) => Check::Failed(format!(
                "{reference} will not become {type_}={status} until something changes: {failure}"
            )),
            None => Check::Pending(state),
        },
        done => done,
    }
}

/// Whether the condition holds for the current generation (without looking at failures).
fn holds(res: &Value, type_: &str, status: &str, reference: &str) -> Check {
    let Some(cond) = condition(res, type_) else {
        return Check::Pending(format!("{type_} not reported yet"));
    };
    let current = str_at(cond, "/status").unwrap_or("Unknown");
    let reason = str_at(cond, "/reason").unwrap_or_default();
    let message = str_at(cond, "/message").unwrap_or_default();
    let mut state = format!("{type_}={current}");
    if !reason.is_empty() {
        state.push_str(&format!(" ({reason})"));
    }
    if !message.is_empty() {
        state.push_str(&format!(": {message}"));
    }
    let generation = res.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = cond.get("observedGeneration").and_then(Value::as_i64);
    if let (Some(generation), Some(observed)) = (generation, observed)
        && observed < generation
    {
        return Check::Pending(format!("{state} [for generation {observed}; waiting for generation {generation}]"));
    }
    if current.eq_ignore_ascii_case(status) {
        Check::Done(format!("{reference} condition met"))
    } else {
        Check::Pending(state)
    }
}

/// Where a deletion stands while the resource still exists.
fn deletion_pending(res: &Value) -> Check {
    if str_at(res, "/metadata/deletionTimestamp").is_none() {
        return Check::Pending("not being deleted".to_string());
    }
    let finalizers = crate::cli::resource::finalizers(res);
    if finalizers.is_empty() {
        Check::Pending("deletion requested".to_string())
    } else {
        Check::Pending(format!("deletion requested; waiting for finalizers {}", finalizers.join(", ")))
    }
}

/// Calls `check` every second until it says done, it fails for good, or `timeout`
/// passes. Transient failures (server unreachable, 429, 503) are shown and retried,
/// no sooner than a `Retry-After` asks. Progress goes to stderr: a spinner on a
/// terminal, else one line each time the status changes.
/// On timeout the error names the last status seen.
pub async fn wait_until(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<Check, ClientError>,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    let spinner = spinner(what);
    let interactive = std::io::stderr().is_terminal();
    let mut last = String::new();
    let result = loop {
        let mut pause = POLL_INTERVAL;
        let previous = std::mem::take(&mut last);
        match check().await {
            Ok(Check::Done(message)) => break Ok(message),
            Ok(Check::Failed(reason)) => break Err(anyhow::anyhow!(reason)),
            Ok(Check::Pending(state)) => last = state,
            Err(e) if e.is_transient() => {
                pause = pause.max(e.retry_after().unwrap_or_default());
                last = format!("retrying: {}", e.to_string().replace('\n', " "));
            }
            Err(e) => break Err(e.into()),
        }
        spinner.set_message(format!("waiting for {what}: {last}"));
        if !interactive && last != previous {
            eprintln!("waiting for {what}: {last}");
        }
        let now = Instant::now();
        if now >= deadline {
            break Err(anyhow::anyhow!(
                "timed out after {} waiting for {what}; last status: {last}",
                format_duration(timeout)
            ));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
    };
    spinner.finish_and_clear();
    result
}

/// A spinner on stderr; indicatif draws nothing when stderr is not a terminal.
fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(format!("waiting for {what}"));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::error::ApiError;
    use serde_json::json;

    #[test]
    fn parses_what_to_wait_for() {
        let ready = WaitFor::Condition { type_: ConditionType::Ready, status: "True".into() };
        assert_eq!("condition=Ready".parse::<WaitFor>(), Ok(ready));
        assert_eq!(
            "condition=Degraded=false".parse::<WaitFor>(),
            Ok(WaitFor::Condition { type_: ConditionType::Degraded, status: "False".into() })
        );
        assert_eq!(
            "condition=synced".parse::<WaitFor>(),
            Ok(WaitFor::Condition { type_: ConditionType::Synced, status: "True".into() })
        );
        assert_eq!(
            "condition=Healthy".parse::<WaitFor>(),
            Err("unknown condition type \"Healthy\"; the known ones are Ready, Synced, Progressing, Degraded, Drifted, Advisory"
                .into())
        );
        assert_eq!("delete".parse::<WaitFor>(), Ok(WaitFor::Delete));
        assert!("Ready".parse::<WaitFor>().is_err());
        assert!("condition=".parse::<WaitFor>().is_err());
        assert!("condition=Ready=maybe".parse::<WaitFor>().is_err());
    }

    fn res(status: &str, observed: i64) -> Value {
        json!({"metadata": {"generation": 3},
               "status": {"conditions": [{"type": "Ready", "status": status, "reason": "Provisioning",
                                          "message": "build running", "observedGeneration": observed}]}})
    }

    #[test]
    fn condition_must_hold_for_the_current_generation() {
        let r = "relay.mooring/default/gw";
        assert_eq!(evaluate(&res("True", 3), "Ready", "True", r), Check::Done(format!("{r} condition met")));
        assert_eq!(
            evaluate(&res("False", 3), "Ready", "True", r),
            Check::Pending("Ready=False (Provisioning): build running".into())
        );
        assert!(
            matches!(evaluate(&res("True", 2), "Ready", "True", r), Check::Pending(s) if s.contains("waiting for generation 3"))
        );
        assert_eq!(evaluate(&json!({}), "Ready", "True", r), Check::Pending("Ready not reported yet".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_the_last_status() {
        let mut calls = 0;
        let err = wait_until("relay \"gw\" to be Ready=True", Duration::from_secs(3), async || {
            calls += 1;
            Ok(Check::Pending(format!("Ready=False (look {calls})")))
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out after 3s waiting for relay \"gw\" to be Ready=True; last status: Ready=False (look 4)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_and_stops_at_others() {
        let mut calls = 0;
        let done = wait_until("x", Duration::from_secs(10), async || {
            calls += 1;
            match calls {
                1 => Err(ClientError::Api(ApiError::from_body(503, b""))),
                _ => Ok(Check::Done("ok".into())),
            }
        })
        .await
        .unwrap();
        assert_eq!(done, "ok");

        let err = wait_until("x", Duration::from_secs(10), async || {
            Err(ClientError::Api(ApiError::from_body(403, br#"{"error":{"code":"Forbidden","message":"denied"}}"#)))
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "denied");
    }
}
