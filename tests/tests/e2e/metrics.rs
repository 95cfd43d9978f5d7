//! `/metrics` as a dashboard reads it: per-resource gauges that follow the
//! controller and go with the resource, a token or a scraper-only address, and
//! a Grafana dashboard and alert rules that query only what is exported.

use std::collections::BTreeSet;
use std::path::Path;

use promql_parser::parser::Expr;
use promql_parser::util::{ExprVisitor, walk_expr};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tests::{Server, Stack, WAIT, eventually, free_port, metric_value, relay_json};

/// The value of `mooring_resource_condition` for a relay's `type`/`status`.
fn condition_series(text: &str, name: &str, type_: &str, status: &str) -> Option<f64> {
    let labels = [("kind", "Relay"), ("namespace", "default"), ("name", name), ("type", type_), ("status", status)];
    metric_value(text, "mooring_resource_condition", &labels)
}

async fn scrape(server: &Server) -> Result<String, String> {
    server.metrics().await
}

#[tokio::test]
async fn resource_gauges_follow_the_controller_and_go_with_the_resource() {
    let stack = Stack::new("metrics_resources").await;
    let metrics_port = free_port();
    let server = stack
        .server()
        .env("MOORING_RESOURCE_METRICS_SECONDS", "1")
        .env("MOORING_POLL_SECONDS", "1")
        .env("MOORING_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
        .start()
        .await;

    // A relay in a cluster that does not exist: not Synced, not Ready.
    let mut doc = relay_json("gw", "default", "public.ecr.aws/acme/gateway:2.1.0");
    doc["spec"]["cluster"] = json!("nowhere");
    let resp = server.api(Method::POST, "/v1/namespaces/default/relays").json(&doc).send().await.expect("create");
    assert_eq!(resp.status(), StatusCode::CREATED);
    eventually("the relay's Synced=False and Ready=Unknown gauges", WAIT, async || {
        let text = scrape(&server).await?;
        let synced = condition_series(&text, "gw", "Synced", "False");
        let ready = condition_series(&text, "gw", "Ready", "Unknown");
        match (synced, ready) {
            (Some(1.0), Some(1.0)) => Ok(()),
            _ => Err(text.lines().filter(|l| l.contains("name=\"gw\"")).collect::<Vec<_>>().join("\n")),
        }
    })
    .await;

    // Fixed through the API; the controller makes it Ready; the gauge flips.
    let resp = server
        .api(Method::PATCH, "/v1/namespaces/default/relays/gw")
        .header("content-type", "application/merge-patch+json")
        .body(json!({"spec": {"cluster": "prod"}}).to_string())
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = eventually("the relay's Ready=True gauge", WAIT, async || {
        let text = scrape(&server).await?;
        match condition_series(&text, "gw", "Ready", "True") {
            Some(1.0) => Ok(text),
            _ => Err(text.lines().filter(|l| l.contains("name=\"gw\"")).collect::<Vec<_>>().join("\n")),
        }
    })
    .await;
    assert_eq!(
        condition_series(&text, "gw", "Ready", "Unknown"),
        None,
        "one series per condition: the old status went"
    );
    assert_eq!(condition_series(&text, "gw", "Synced", "True"), Some(1.0));
    assert_eq!(condition_series(&text, "gw", "Synced", "False"), None);
    let gw = [("kind", "Relay"), ("namespace", "default"), ("name", "gw")];
    assert_eq!(metric_value(&text, "mooring_resource_generation", &gw), Some(2.0));
    assert_eq!(metric_value(&text, "mooring_resource_observed_generation", &gw), Some(2.0));
    let running = [("kind", "Relay"), ("name", "gw"), ("state", "running")];
    assert!(metric_value(&text, "mooring_resource_replicas", &running).is_some(), "{text}");
    assert!(metric_value(&text, "mooring_resource_metric_series", &[]).unwrap_or(0.0) >= 6.0, "{text}");

    // The scraper-only address serves the same without a token; the API's needs one.
    let plain = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await.expect("metrics listener");
    assert_eq!(plain.status(), StatusCode::OK);
    let plain = plain.text().await.expect("body");
    assert!(plain.contains("mooring_resource_condition{"), "{plain}");
    let anonymous = server.http(Method::GET, "/metrics").send().await.expect("anonymous /metrics");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Deleted: its series disappear.
    let resp = server.api(Method::DELETE, "/v1/namespaces/default/relays/gw").send().await.expect("delete");
    assert!(resp.status().is_success(), "{}", resp.status());
    eventually("the relay's series to go", WAIT, async || {
        let text = scrape(&server).await?;
        let left: Vec<&str> = text.lines().filter(|l| l.contains("name=\"gw\"")).collect();
        if left.is_empty() { Ok(()) } else { Err(left.join("\n")) }
    })
    .await;
}

/// The series names a Prometheus text exposition holds, from its `# TYPE`
/// lines (a counter's series end in `_total`, a histogram's in `_bucket`,
/// `_sum` and `_count`).
fn exported_series(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// Collects the metric names an expression selects.
#[derive(Default)]
struct Selected(BTreeSet<String>);

impl ExprVisitor for Selected {
    type Error = String;
    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        let selector = match expr {
            Expr::VectorSelector(v) => Some(v),
            Expr::MatrixSelector(m) => Some(&m.vs),
            _ => None,
        };
        if let Some(v) = selector {
            let name = v.name.clone().ok_or_else(|| format!("a selector without a metric name: {v}"))?;
            self.0.insert(name);
        }
        Ok(true)
    }
}

fn selected(expr: &str) -> Result<BTreeSet<String>, String> {
    let ast = promql_parser::parser::parse(expr).map_err(|e| format!("{expr}: {e}"))?;
    let mut names = Selected::default();
    walk_expr(&mut names, &ast)?;
    Ok(names.0)
}

/// Every `expr` of a Grafana dashboard's panels (rows included).
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().map(|p| p.iter().collect()).unwrap_or_default();
    while let Some(panel) = panels.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            panels.extend(nested);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((panel["title"].as_str().unwrap_or("?").to_string(), expr.to_string()));
            }
        }
    }
    out
}

/// A Prometheus rule file, as Prometheus reads it (unknown fields refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    #[serde(default)]
    interval: Option<String>,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn the_dashboard_and_alerts_query_only_exported_metrics() {
    let stack = Stack::new("metrics_dashboard").await;
    let server =
        stack.server().env("MOORING_RESOURCE_METRICS_SECONDS", "1").env("MOORING_POLL_SECONDS", "1").start().await;
    let resp = server
        .api(Method::POST, "/v1/namespaces/default/relays")
        .json(&relay_json("gw", "default", "public.ecr.aws/acme/gateway:2.1.0"))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let text = eventually("the relay's gauges", WAIT, async || {
        let text = scrape(&server).await?;
        if text.contains("mooring_resource_replicas{") { Ok(text) } else { Err(text) }
    })
    .await;
    let exported = exported_series(&text);

    let dashboard: Value = serde_json::from_str(&read("deploy/grafana/mooring.json")).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "mooring-overview");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let mut problems = Vec::new();
    for (panel, expr) in &queries {
        match selected(expr) {
            Ok(names) => problems
                .extend(names.difference(&exported).map(|n| format!("panel {panel:?}: {n} is not exported ({expr})"))),
            Err(e) => problems.push(format!("panel {panel:?}: {e}")),
        }
    }

    let rules: RuleFile = serde_norway::from_str(&read("deploy/prometheus/alerts.yaml")).expect("a rule file");
    let mut alerts = BTreeSet::new();
    for group in &rules.groups {
        assert!(!group.name.is_empty() && group.interval.is_none());
        for rule in &group.rules {
            assert!(rule.alert.is_some() != rule.record.is_some(), "alert or record: {rule:?}");
            if let Some(d) = &rule.for_ {
                promql_parser::util::parse_duration(d).unwrap_or_else(|e| panic!("for {d:?}: {e}"));
            }
            if let Some(alert) = &rule.alert {
                assert!(rule.labels.contains_key("severity"), "{alert} has no severity");
                assert!(rule.annotations.contains_key("summary"), "{alert} has no summary");
                alerts.insert(alert.clone());
            }
            match selected(&rule.expr) {
                Ok(names) => problems
                    .extend(names.difference(&exported).map(|n| format!("rule {:?}: {n} is not exported", rule.alert))),
                Err(e) => problems.push(format!("rule {:?}: {e}", rule.alert)),
            }
        }
    }
    assert!(problems.is_empty(), "{}\n\nexported: {exported:?}", problems.join("\n"));
    for wanted in
        ["MooringResourceNotReady", "MooringReconcileErrors", "MooringAwsThrottling", "MooringShardWithoutController"]
    {
        assert!(alerts.contains(wanted), "{wanted} missing: {alerts:?}");
    }
}

#[test]
fn the_checks_catch_a_query_of_a_metric_that_does_not_exist() {
    let exported = exported_series(
        "# TYPE mooring_reconcile counter\nmooring_reconcile_total 1\n# TYPE mooring_x histogram\n# TYPE mooring_g gauge\n",
    );
    let names = selected("sum(rate(mooring_reconcile_total[5m])) / sum(mooring_g) + mooring_typo").unwrap();
    let missing: Vec<&String> = names.difference(&exported).collect();
    assert_eq!(missing, vec!["mooring_typo"]);
    assert!(exported.contains("mooring_x_bucket"));
    assert!(selected("sum(rate(mooring_reconcile_total[5m]").is_err(), "a syntax error is reported");
}
