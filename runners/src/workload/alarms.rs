//! A node's CloudWatch alarms: `spec.alarms` rendered for the node's current
//! instance ([`wanted`]), and kept equal to it ([`sync`]).
//!
//! Alarm names carry the node's uid (`mooring-node-<uid>-status-check`), so
//! they stay the same across replacements: a new instance only changes the
//! `InstanceId` dimension, which PutMetricAlarm updates in place. The names
//! are recorded in status before an alarm is first created, and teardown
//! deletes what status records. An existing alarm is changed or deleted only
//! when it carries the node's `mooring:uid` tag (tags are set when
//! PutMetricAlarm creates it).

use std::collections::BTreeSet;

use api_types::node::NodeSpec;

use crate::cloud::alarms::{Alarms, MetricAlarm};
use crate::cloud::{CloudResult, TAG_NAME, TAG_UID, Tags};

/// The name of one of a node's alarms.
pub fn alarm_name(uid: &str, which: &str) -> String {
    format!("mooring-node-{uid}-{which}")
}

/// The alarms `spec` asks for on instance `instance_id`. Pure.
pub fn wanted(uid: &str, key: &str, spec: &NodeSpec, instance_id: &str) -> Vec<MetricAlarm> {
    let Some(alarms) = &spec.alarms else { return vec![] };
    let dimensions = vec![("InstanceId".to_string(), instance_id.to_string())];
    let mut out = vec![];
    if alarms.status_check {
        out.push(MetricAlarm {
            name: alarm_name(uid, "status-check"),
            description: format!("Mooring node {key}: EC2 status check failed"),
            namespace: "AWS/EC2".into(),
            metric_name: "StatusCheckFailed".into(),
            dimensions: dimensions.clone(),
            statistic: "Maximum".into(),
            comparison: "GreaterThanOrEqualToThreshold".into(),
            threshold: 1.0,
            period_seconds: 60,
            evaluation_periods: 2,
        });
    }
    if let Some(c) = &alarms.custom {
        out.push(MetricAlarm {
            name: alarm_name(uid, "custom"),
            description: format!("Mooring node {key}: {} {}", c.namespace, c.metric_name),
            namespace: c.namespace.clone(),
            metric_name: c.metric_name.clone(),
            dimensions,
            statistic: c.statistic.as_str().into(),
            comparison: c.comparison.as_str().into(),
            threshold: c.threshold,
            period_seconds: c.period_seconds,
            evaluation_periods: c.evaluation_periods,
        });
    }
    out
}

/// An alarm of the node after a sync, with the state read.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmReading {
    /// The alarm's name.
    pub name: String,
    /// `OK`, `ALARM`, `INSUFFICIENT_DATA`; `None` for one just created.
    pub state: Option<String>,
    /// CloudWatch's reason for the state.
    pub state_reason: String,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlarmSync {
    /// The node's alarms, wanted and in place.
    pub readings: Vec<AlarmReading>,
    /// Alarms of the node's names that are not the node's (no `mooring:uid`
    /// tag of it): neither changed nor deleted.
    pub foreign: Vec<String>,
}

/// Makes the node's alarms `wanted` and deletes those of `recorded` no
/// longer wanted, reading the states on the way. An existing alarm is put
/// again or deleted only when it carries the node's `mooring:uid` tag, and
/// read as the node's once that was checked (`known`: names whose tag was
/// checked or which this node created); any other is left alone and named
/// in [`AlarmSync::foreign`].
pub async fn sync(
    alarms: &dyn Alarms,
    uid: &str,
    key: &str,
    wanted: &[MetricAlarm],
    recorded: &[String],
    known: &[String],
) -> CloudResult<AlarmSync> {
    let names: BTreeSet<String> = wanted.iter().map(|a| a.name.clone()).chain(recorded.iter().cloned()).collect();
    let names: Vec<String> = names.into_iter().collect();
    let observed = if names.is_empty() { vec![] } else { alarms.metric_alarms(&names).await? };
    let tagged = |arn: String| async move {
        alarms.alarm_tags(&arn).await.map(|tags| tags.get(TAG_UID).map(String::as_str) == Some(uid))
    };
    let mut out = AlarmSync::default();
    for w in wanted {
        if let Some(o) = observed.iter().find(|o| o.alarm.name == w.name) {
            let settled = o.alarm == *w;
            let mine = (settled && known.contains(&w.name)) || tagged(o.arn.clone()).await?;
            if !mine {
                out.foreign.push(w.name.clone());
                continue;
            }
            if settled {
                let (state, state_reason) = (Some(o.state.clone()), o.state_reason.clone());
                out.readings.push(AlarmReading { name: w.name.clone(), state, state_reason });
                continue;
            }
        }
        let tags = Tags::from([(TAG_UID.to_string(), uid.to_string()), (TAG_NAME.to_string(), key.to_string())]);
        alarms.put_metric_alarm(w, &tags).await?;
        out.readings.push(AlarmReading { name: w.name.clone(), state: None, state_reason: String::new() });
    }
    let mut gone = vec![];
    for name in recorded.iter().filter(|n| !wanted.iter().any(|w| &w.name == *n)) {
        if let Some(o) = observed.iter().find(|o| &o.alarm.name == name) {
            if tagged(o.arn.clone()).await? {
                gone.push(name.clone());
            } else {
                out.foreign.push(name.clone());
            }
        }
    }
    if !gone.is_empty() {
        alarms.delete_alarms(&gone).await?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(alarms: serde_json::Value) -> NodeSpec {
        serde_json::from_value(serde_json::json!({
            "software": {"name": "pulse", "version": "1", "artifact": "s3://pulse-artifacts/p.tar.gz"},
            "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d",
            "alarms": alarms
        }))
        .unwrap()
    }

    #[test]
    fn what_a_spec_asks_for_as_a_table() {
        let cases = [
            (serde_json::json!(null), vec![]),
            (serde_json::json!({}), vec!["mooring-node-u1-status-check"]),
            (serde_json::json!({"statusCheck": false}), vec![]),
            (
                serde_json::json!({"custom": {"namespace": "CWAgent", "metricName": "mem_used_percent",
                    "comparison": "GreaterThanThreshold", "threshold": 90}}),
                vec!["mooring-node-u1-status-check", "mooring-node-u1-custom"],
            ),
        ];
        for (alarms, names) in cases {
            let got: Vec<String> =
                wanted("u1", "ns/pulse", &spec(alarms.clone()), "i-1").into_iter().map(|a| a.name).collect();
            assert_eq!(got, names, "{alarms}");
        }
        let custom = wanted(
            "u1",
            "ns/pulse",
            &spec(serde_json::json!({"statusCheck": false, "custom": {"namespace": "CWAgent",
                "metricName": "disk_used_percent", "statistic": "Maximum", "comparison": "GreaterThanOrEqualToThreshold",
                "threshold": 85.5, "periodSeconds": 300, "evaluationPeriods": 3}})),
            "i-9",
        );
        let c = &custom[0];
        assert_eq!(c.dimensions, [("InstanceId".to_string(), "i-9".to_string())], "on the current instance");
        assert_eq!((c.statistic.as_str(), c.comparison.as_str()), ("Maximum", "GreaterThanOrEqualToThreshold"));
        assert_eq!((c.threshold, c.period_seconds, c.evaluation_periods), (85.5, 300, 3));
    }

    #[tokio::test]
    async fn an_alarm_is_put_once_changed_only_when_tagged_and_deleted() {
        let sim = crate::sim::SimCloud::new(crate::sim::SimConfig::default());
        let metrics = sim.alarms();
        let puts = || sim.call_count(&crate::cloud::ops::PUT_METRIC_ALARM);
        let s = spec(serde_json::json!({}));

        // Someone else's alarm where the node's would be: left alone.
        let theirs = wanted("u1", "ns/a", &s, "i-1");
        let foreign = MetricAlarm { threshold: 5.0, ..theirs[0].clone() };
        metrics.put_metric_alarm(&foreign, &Tags::new()).await.unwrap();
        let done = sync(metrics.as_ref(), "u1", "ns/a", &theirs, &[], &[]).await.unwrap();
        assert_eq!(done.foreign, [theirs[0].name.clone()]);
        assert!(done.readings.is_empty());
        assert_eq!(sim.metric_alarms()[&theirs[0].name].0.threshold, 5.0, "unchanged");
        // Nor is it deleted, or read as the node's even when it matches.
        let names = vec![theirs[0].name.clone()];
        let same = sync(metrics.as_ref(), "u1", "ns/a", std::slice::from_ref(&foreign), &names, &[]).await.unwrap();
        assert_eq!(same.foreign, names);
        let gone = sync(metrics.as_ref(), "u1", "ns/a", &[], &names, &[]).await.unwrap();
        assert_eq!(gone.foreign, names);
        assert!(sim.metric_alarms().contains_key(&names[0]), "not deleted");

        // The node's own: created once, then only read; moved to a new instance; deleted.
        let mine = wanted("u2", "ns/b", &s, "i-2");
        let before = puts();
        let first = sync(metrics.as_ref(), "u2", "ns/b", &mine, &[], &[]).await.unwrap();
        assert_eq!(first.readings[0].state, None, "just created");
        let names = vec![mine[0].name.clone()];
        let tags_read = || sim.call_count(&crate::cloud::ops::LIST_ALARM_TAGS);
        let checked = tags_read();
        let second = sync(metrics.as_ref(), "u2", "ns/b", &mine, &names, &[]).await.unwrap();
        assert_eq!(second.readings[0].state.as_deref(), Some("OK"));
        assert_eq!(tags_read() - checked, 1, "its tag is checked once...");
        sync(metrics.as_ref(), "u2", "ns/b", &mine, &names, &names).await.unwrap();
        assert_eq!(tags_read() - checked, 1, "...then it is known");
        assert_eq!(puts() - before, 1, "a settled alarm is not put again");
        let moved = wanted("u2", "ns/b", &s, "i-3");
        sync(metrics.as_ref(), "u2", "ns/b", &moved, &names, &names).await.unwrap();
        assert_eq!(sim.metric_alarms()[&names[0]].0.dimensions[0].1, "i-3");
        assert_eq!(sim.metric_alarms()[&names[0]].1[TAG_UID], "u2", "tags kept from creation");
        sync(metrics.as_ref(), "u2", "ns/b", &[], &names, &names).await.unwrap();
        assert!(!sim.metric_alarms().contains_key(&names[0]));
    }
}
