//! `mooring get`: list resources or show one, as a table, YAML, JSON, names or
//! JSONPath; with `-w`, then print each change as it happens (from the API's
//! change stream).

use std::collections::HashMap;
use std::process::ExitCode;

use api_types::{API_VERSION, Kind};
use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::cli::client::{ApiClient, Watch};
use crate::cli::commands::namespace_or_default;
use crate::cli::output::{self, OutputFormat};
use crate::cli::resource::{condition, condition_status, name, namespace, replicas, str_at, text_at};

/// Arguments of `get`.
#[derive(Args, Debug, Clone)]
pub struct GetArgs {
    /// The kind: node, relay, worker or policy (singular, plural or capitalised),
    /// or `all` for nodes, node sets, relays and workers together.
    pub kind: Kinds,
    /// One resource by name; all of the namespace when omitted.
    pub name: Option<String>,
    /// The namespace to look in [default: `default`; for policies, the
    /// cluster-scoped ones (and, in a list, every namespaced one you may read)].
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// List across every namespace the token may read.
    #[arg(short = 'A', long, conflicts_with_all = ["namespace", "name"])]
    pub all_namespaces: bool,
    /// Label selector (`app=gw,tier!=edge`, `env in (a,b)`, `!legacy`).
    #[arg(short = 'l', long, conflicts_with = "name")]
    pub selector: Option<String>,
    /// After printing, watch: print the resource again each time it changes
    /// (created, updated, new status, deleted) until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Output format: table, wide, yaml, json, name, or jsonpath=QUERY
    /// (`jsonpath={.items[*].metadata.name}` or RFC 9535 `$.items[*].metadata.name`).
    #[arg(short, long, default_value = "table")]
    pub output: OutputFormat,
}

/// What `get` lists: one kind, or `all` (the reconciled kinds: nodes, node sets, relays, workers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinds {
    /// Nodes, relays and workers, as `kubectl get all` lists the workloads.
    All,
    /// One kind.
    One(Kind),
}

impl Kinds {
    /// Whether a `get` without `-n` may mean cluster-scoped resources (policies).
    pub fn may_be_cluster_scoped(self) -> bool {
        matches!(self, Kinds::One(k) if k.may_be_cluster_scoped())
    }
}

impl std::str::FromStr for Kinds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(Kinds::All);
        }
        s.parse::<Kind>().map(Kinds::One).map_err(|e| format!("{e}; or `all`"))
    }
}

/// Runs `get`.
pub async fn run(client: &ApiClient, args: GetArgs) -> anyhow::Result<ExitCode> {
    match args.kind {
        Kinds::One(kind) => run_kind(client, args, kind).await,
        Kinds::All => run_all(client, &args).await,
    }
}

/// `get all`: every reconciled kind, a table each (names as `relay.mooring/NAME`),
/// or one list in the other formats.
async fn run_all(client: &ApiClient, args: &GetArgs) -> anyhow::Result<ExitCode> {
    if args.watch || args.name.is_some() {
        anyhow::bail!("`get all` lists; -w and a NAME need one kind (get relays -w, get relay NAME)");
    }
    let namespace = namespace_or_default(Kind::Relay, args.namespace.as_deref());
    let ns = (!args.all_namespaces).then_some(namespace);
    let mut groups = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| k.is_reconciled()) {
        let items = client.list(kind, ns, args.selector.as_deref()).await?;
        if !items.is_empty() {
            groups.push((kind, items));
        }
    }
    let text = match &args.output {
        OutputFormat::Table | OutputFormat::Wide => {
            if groups.is_empty() {
                let place = if args.all_namespaces { String::new() } else { format!(" in {namespace} namespace") };
                eprintln!("No resources found{place}.");
                return Ok(ExitCode::SUCCESS);
            }
            let wide = args.output == OutputFormat::Wide;
            let tables: Vec<String> = groups
                .iter()
                .map(|(kind, items)| {
                    let named: Vec<Value> = items.iter().map(|item| qualified(*kind, item)).collect();
                    render_table(*kind, &named, args.all_namespaces, wide, Utc::now())
                })
                .collect();
            tables.join("\n")
        }
        OutputFormat::Name => groups
            .iter()
            .flat_map(|(kind, items)| items.iter().map(move |item| qualified_name(*kind, item)))
            .map(|n| format!("{n}\n"))
            .collect(),
        other => {
            let all: Vec<Value> = groups.into_iter().flat_map(|(_, items)| items).collect();
            let list = serde_json::to_value(list_document(all))?;
            match other {
                OutputFormat::Yaml => output::to_yaml(&list)?,
                OutputFormat::JsonPath(query) => query.render(&list),
                _ => output::to_json(&list)?,
            }
        }
    };
    output::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `relay.mooring/gateway`: a name that says its kind, for lists of several kinds.
fn qualified_name(kind: Kind, item: &Value) -> String {
    format!("{}.mooring/{}", kind.as_str().to_ascii_lowercase(), name(item))
}

/// A copy of `item` whose name says its kind, for the tables of `get all`.
fn qualified(kind: Kind, item: &Value) -> Value {
    let mut item = item.clone();
    if let Some(meta) = item.get_mut("metadata").and_then(Value::as_object_mut) {
        let display = format!(
            "{}.mooring/{}",
            kind.as_str().to_ascii_lowercase(),
            meta.get("name").and_then(Value::as_str).unwrap_or_default()
        );
        meta.insert("name".into(), Value::String(display));
    }
    item
}

/// `get` of one kind.
async fn run_kind(client: &ApiClient, args: GetArgs, kind: Kind) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let namespace = namespace_or_default(kind, args.namespace.as_deref());
    // Listing policies without -n lists them all, cluster-scoped and namespaced.
    let everywhere = args.all_namespaces || namespace.is_empty();
    // Open the stream before reading, so no change between the two is missed.
    let mut watch = match args.watch {
        true => Some(client.watch(kind, (!everywhere).then_some(namespace)).await?),
        false => None,
    };
    let (items, single) = match &args.name {
        Some(name) => (vec![client.get(kind, namespace, name).await?], true),
        None => {
            let ns = (!everywhere).then_some(namespace);
            (client.list(kind, ns, args.selector.as_deref()).await?, false)
        }
    };
    // What -w compares its first changes with (the list is moved into the output below).
    let mut shown: HashMap<(String, String), String> = HashMap::new();
    if args.watch {
        for item in &items {
            let key = (crate::cli::resource::namespace(item).to_string(), name(item).to_string());
            shown.insert(key, render_one(&args, kind, item, everywhere)?);
        }
    }
    let text = match &args.output {
        OutputFormat::Name => items
            .iter()
            .map(|item| format!("{}.mooring/{}\n", kind.as_str().to_ascii_lowercase(), name(item)))
            .collect(),
        OutputFormat::JsonPath(query) => match (single, items.first()) {
            (true, Some(item)) => query.render(item),
            _ => query.render(&serde_json::to_value(list_document(items))?),
        },
        OutputFormat::Yaml | OutputFormat::Json => {
            let yaml = args.output == OutputFormat::Yaml;
            match (single, items.first()) {
                (true, Some(item)) if yaml => output::to_yaml(item)?,
                (true, Some(item)) => output::to_json(item)?,
                _ if yaml => output::to_yaml(&list_document(items))?,
                _ => output::to_json(&list_document(items))?,
            }
        }
        OutputFormat::Table | OutputFormat::Wide => {
            if items.is_empty() {
                let place = if everywhere { String::new() } else { format!(" in {namespace} namespace") };
                eprintln!("No resources found{place}.");
                String::new()
            } else {
                render_table(kind, &items, everywhere, args.output == OutputFormat::Wide, now)
            }
        }
    };
    output::print(&text)?;
    if let Some(watch) = watch.as_mut() {
        follow(client, &args, kind, everywhere, watch, shown).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `get -w`: prints the resource each time the stream says it changed, in the
/// output format asked for (a table row without its header); a row equal to the
/// last one printed for that resource (`last`, seeded with the list) is not repeated.
async fn follow(
    client: &ApiClient,
    args: &GetArgs,
    kind: Kind,
    everywhere: bool,
    watch: &mut Watch,
    mut last: HashMap<(String, String), String>,
) -> anyhow::Result<()> {
    while let Some(change) = watch.next().await? {
        let wanted = args.name.as_ref().is_none_or(|n| *n == change.name);
        if !wanted || change.op == "event" || Kind::from_any_name(&change.kind) != Some(kind) {
            continue;
        }
        let text = match client.get(kind, &change.namespace, &change.name).await {
            Ok(item) => render_one(args, kind, &item, everywhere)?,
            Err(e) if e.is_not_found() => {
                let place = if everywhere { format!("{}/", change.namespace) } else { String::new() };
                format!("{place}{} deleted\n", change.name)
            }
            Err(e) => return Err(e.into()),
        };
        let key = (change.namespace, change.name);
        if last.get(&key) != Some(&text) {
            output::print(&text)?;
            last.insert(key, text);
        }
    }
    Ok(())
}

/// One resource in the output format of `args`, for `get -w`.
fn render_one(args: &GetArgs, kind: Kind, item: &Value, everywhere: bool) -> anyhow::Result<String> {
    Ok(match &args.output {
        OutputFormat::Name => format!("{}.mooring/{}\n", kind.as_str().to_ascii_lowercase(), name(item)),
        OutputFormat::JsonPath(query) => query.render(item),
        OutputFormat::Yaml => format!("---\n{}", output::to_yaml(item)?),
        OutputFormat::Json => output::to_json(item)?,
        OutputFormat::Table | OutputFormat::Wide => {
            let wide = args.output == OutputFormat::Wide;
            let table = render_table(kind, std::slice::from_ref(item), everywhere, wide, Utc::now());
            table.lines().skip(1).map(|l| format!("{l}\n")).collect()
        }
    })
}

/// Several resources as one document (`kind: List`), as `kubectl get -o yaml` prints
/// them. A struct rather than a `json!` map so the keys keep this order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListDocument {
    api_version: &'static str,
    kind: &'static str,
    items: Vec<Value>,
}

/// Wraps `items` in a `kind: List` document.
pub fn list_document(items: Vec<Value>) -> ListDocument {
    ListDocument { api_version: API_VERSION, kind: "List", items }
}

/// The `get` table: NAMESPACE (with `-A`), NAME, READY, SYNCED, GENERATION, AGE; `wide`
/// adds the Ready reason and the kind's outputs.
pub fn render_table(kind: Kind, items: &[Value], all_namespaces: bool, wide: bool, now: DateTime<Utc>) -> String {
    if kind == Kind::Policy {
        return render_policies(items, all_namespaces, now);
    }
    let mut headers: Vec<&str> = Vec::new();
    if all_namespaces {
        headers.push("NAMESPACE");
    }
    headers.extend(["NAME", "READY", "SYNCED", "GENERATION", "AGE"]);
    if wide {
        headers.push("REASON");
        headers.extend(kind_headers(kind));
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let mut row = Vec::with_capacity(headers.len());
            if all_namespaces {
                row.push(namespace(item).to_string());
            }
            row.push(name(item).to_string());
            row.push(condition_status(item, "Ready"));
            row.push(condition_status(item, "Synced"));
            row.push(text_at(item, "/metadata/generation"));
            row.push(output::age_of(str_at(item, "/metadata/creationTimestamp"), now));
            if wide {
                let reason = condition(item, "Ready").map(|c| text_at(c, "/reason"));
                row.push(reason.unwrap_or_else(|| output::NONE.to_string()));
                row.extend(kind_cells(kind, item));
            }
            row
        })
        .collect();
    output::table(&headers, &rows)
}

/// The policies table: NAMESPACE (`<cluster>` for cluster-scoped ones), NAME,
/// TYPE (`guardrails` or `rego`), KINDS judged, GENERATION, AGE. Policies have no
/// status conditions: they are judged at admission, not reconciled.
fn render_policies(items: &[Value], all_namespaces: bool, now: DateTime<Utc>) -> String {
    let mut headers = Vec::new();
    if all_namespaces {
        headers.push("NAMESPACE");
    }
    headers.extend(["NAME", "TYPE", "KINDS", "GENERATION", "AGE"]);
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let mut row = Vec::with_capacity(headers.len());
            if all_namespaces {
                let ns = namespace(item);
                row.push(if ns.is_empty() { "<cluster>".to_string() } else { ns.to_string() });
            }
            row.push(name(item).to_string());
            row.push(if item.pointer("/spec/guardrails").is_some() { "guardrails" } else { "rego" }.to_string());
            let kinds: Vec<&str> = item
                .pointer("/spec/kinds")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            row.push(if kinds.is_empty() { "Node,NodeSet,Relay,Worker".to_string() } else { kinds.join(",") });
            row.push(text_at(item, "/metadata/generation"));
            row.push(output::age_of(str_at(item, "/metadata/creationTimestamp"), now));
            row
        })
        .collect();
    output::table(&headers, &rows)
}

/// The wide columns particular to a kind.
fn kind_headers(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Node => &["INSTANCE", "IP"],
        Kind::Relay => &["REPLICAS", "SERVICE"],
        Kind::Worker => &["REPLICAS", "BACKLOG", "QUEUE"],
        Kind::Policy => &[],
        Kind::NodeSet => &["READY", "UPDATED", "REVISION"],
    }
}

fn kind_cells(kind: Kind, item: &Value) -> Vec<String> {
    match kind {
        Kind::Node => vec![text_at(item, "/status/instanceId"), text_at(item, "/status/privateIp")],
        Kind::Relay => vec![replicas(item), text_at(item, "/status/service/arn")],
        Kind::Worker => {
            let queue = match str_at(item, "/status/queue/url") {
                Some(url) if !url.is_empty() => url.to_string(),
                _ => text_at(item, "/spec/queue/name"),
            };
            vec![replicas(item), text_at(item, "/status/backlog"), queue]
        }
        Kind::Policy => Vec::new(),
        Kind::NodeSet => vec![
            format!("{}/{}", text_at(item, "/status/readyReplicas"), text_at(item, "/spec/replicas")),
            text_at(item, "/status/updatedReplicas"),
            text_at(item, "/status/updateRevision"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn relay(ns: &str, name: &str, created: &str, conditions: Value, status: Value) -> Value {
        let mut status = status;
        status["conditions"] = conditions;
        json!({
            "apiVersion": "mooring/v1", "kind": "Relay",
            "metadata": {"name": name, "namespace": ns, "generation": 4, "creationTimestamp": created},
            "spec": {}, "status": status
        })
    }

    fn items() -> Vec<Value> {
        vec![
            relay(
                "payments",
                "gateway",
                "2023-11-14T20:13:20Z",
                json!([
                    {"type": "Ready", "status": "True", "reason": "Available", "message": "",
                     "lastTransitionTime": "2023-11-14T21:13:20Z"},
                    {"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "message": "",
                     "lastTransitionTime": "2023-11-14T21:13:20Z"}
                ]),
                json!({"replicas": {"desired": 3, "running": 2}, "service": {"cluster": "c", "name": "payments_gateway", "arn": "arn:aws:ecs:eu-west-1:1:service/c/gateway"}}),
            ),
            relay("default", "new", "2023-11-14T22:13:15Z", json!([]), json!({})),
        ]
    }

    #[test]
    fn table_with_conditions() {
        assert_eq!(
            render_table(Kind::Relay, &items(), false, false, now()),
            "NAME      READY     SYNCED    GENERATION   AGE\n\
             gateway   True      True      4            2h\n\
             new       Unknown   Unknown   4            5s\n"
        );
    }

    #[test]
    fn wide_table_across_namespaces() {
        let text = render_table(Kind::Relay, &items(), true, true, now());
        let lines: Vec<&str> = text.lines().collect();
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            ["NAMESPACE", "NAME", "READY", "SYNCED", "GENERATION", "AGE", "REASON", "REPLICAS", "SERVICE"]
        );
        let first: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            first,
            [
                "payments",
                "gateway",
                "True",
                "True",
                "4",
                "2h",
                "Available",
                "2/3",
                "arn:aws:ecs:eu-west-1:1:service/c/gateway"
            ]
        );
        let second: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(second, ["default", "new", "Unknown", "Unknown", "4", "5s", "<none>", "<none>", "<none>"]);
    }

    #[test]
    fn kind_specific_wide_columns() {
        let node = json!({"metadata": {"name": "n1"},
                          "status": {"instanceId": "i-0abc", "privateIp": "10.0.1.5"}});
        let text = render_table(Kind::Node, &[node], false, true, now());
        assert!(
            text.starts_with("NAME   READY     SYNCED    GENERATION   AGE         REASON   INSTANCE   IP\n"),
            "{text}"
        );
        let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[6..], ["i-0abc", "10.0.1.5"]);

        let worker = json!({"metadata": {"name": "conv"}, "spec": {"queue": {"name": "jobs"}},
                            "status": {"replicas": {"desired": 0, "running": 0}, "backlog": 0}});
        let text = render_table(Kind::Worker, &[worker], false, true, now());
        let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[6..], ["0/0", "0", "jobs"]);
    }

    #[test]
    fn lists_print_as_a_list_document() {
        let yaml = output::to_yaml(&list_document(items())).unwrap();
        assert!(yaml.starts_with("apiVersion: mooring/v1\nkind: List\nitems:\n"), "{yaml}");
    }
}
