//! Peer discovery: the Route53 records a node set keeps in a private hosted
//! zone — one A record per member (`pulse-1.pulse.internal` → its private IP)
//! and one for the set (`pulse.internal` → every `Ready` member's IP).
//!
//! DNS record sets carry no tags, so ownership is marked the way external-dns
//! does it: beside each A record Mooring writes, a TXT record
//! `_mooring.<name>` holding `mooring:uid=<uid>`. Only records with that
//! marker are changed or deleted; an A record without it is a `Conflict`,
//! taken over only with `mooring/adopt: "true"`. The marker lives at its own
//! name so it never meets a TXT record of the user's (SPF, verification) at
//! the same name.
//!
//! One mechanism does every change: [`plan`] compares what should exist with
//! what the zone holds, and [`sync`] applies that as one atomic batch.
//! Removing everything (a scale-down, a moved domain, the set's deletion) is
//! a sync with nothing wanted.

use std::collections::{BTreeMap, BTreeSet};

use crate::cloud::CloudResult;
use crate::cloud::dns::{Dns, RecordChange, RecordCursor, RecordSet, RecordType, under};

/// The prefix of an ownership marker's name.
pub const MARKER_PREFIX: &str = "_mooring.";

/// The name of the ownership marker of record `name`.
pub fn marker_name(name: &str) -> String {
    format!("{MARKER_PREFIX}{name}")
}

/// The value of the ownership marker of the resource `uid`.
pub fn marker_value(uid: &str) -> String {
    format!("mooring:uid={uid}")
}

/// What one record name should hold: these addresses, or (`None`) whatever it
/// holds now — a member between instances has no address to publish, and its
/// old record is better than none.
pub type Wanted = BTreeMap<String, Option<Vec<String>>>;

/// The changes of one pass, and what they leave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordPlan {
    /// What to apply, as one batch.
    pub changes: Vec<RecordChange>,
    /// Names whose A record (or marker) is someone else's: left alone.
    pub conflicts: Vec<String>,
    /// Names taken over by adoption.
    pub adopted: Vec<String>,
    /// Names whose A record is Mooring's once the changes are applied.
    pub owned: Vec<String>,
}

/// What to change so the zone holds `wanted` for `uid`, and nothing else of
/// its. Pure.
pub fn plan(uid: &str, ttl: u32, wanted: &Wanted, observed: &[RecordSet], adopt: bool) -> RecordPlan {
    let index: BTreeMap<(&str, RecordType), &RecordSet> =
        observed.iter().map(|r| ((r.name.as_str(), r.kind), r)).collect();
    let mine = marker_value(uid);
    let ours_only = |m: &RecordSet| m.values.len() == 1 && m.values[0] == mine;
    let marker = |name: &str| index.get(&(marker_name(name).as_str(), RecordType::Txt)).copied();
    let a_record = |name: &str| index.get(&(name, RecordType::A)).copied();
    // A CNAME, an alias or a weighted record at a name holds it.
    let held = |name: &str| index.contains_key(&(name, RecordType::Other));
    let new_marker =
        |name: &str| RecordSet { name: marker_name(name), kind: RecordType::Txt, ttl, values: vec![mine.clone()] };
    let mut out = RecordPlan::default();
    for (name, addresses) in wanted {
        let existing = a_record(name);
        if held(name) || held(&marker_name(name)) {
            out.conflicts.push(name.clone());
            continue;
        }
        // A marker is Mooring's only when it holds exactly this uid: one that
        // holds other values too is someone else's record.
        let ours = match marker(name) {
            Some(m) if ours_only(m) => true,
            Some(_) => {
                out.conflicts.push(name.clone());
                continue;
            }
            None => false,
        };
        let wanted_set = addresses.as_ref().filter(|a| !a.is_empty()).map(|a| {
            let mut values = a.clone();
            values.sort();
            values.dedup();
            RecordSet { name: name.clone(), kind: RecordType::A, ttl, values }
        });
        match (existing, ours) {
            (Some(_), false) if !adopt => {
                out.conflicts.push(name.clone());
                continue;
            }
            (Some(_), false) => {
                out.changes.push(RecordChange::Create(new_marker(name)));
                out.adopted.push(name.clone());
            }
            (None, false) if wanted_set.is_some() => out.changes.push(RecordChange::Create(new_marker(name))),
            (None, false) => continue,
            (_, true) => {}
        }
        match (existing, wanted_set) {
            (Some(e), Some(w)) if *e != w => out.changes.push(RecordChange::Upsert(w)),
            (None, Some(w)) => out.changes.push(RecordChange::Create(w)),
            (None, None) => continue,
            _ => {}
        }
        out.owned.push(name.clone());
    }
    // Everything else marked as ours goes, record and marker.
    let stale: BTreeSet<&str> = observed
        .iter()
        .filter(|r| r.kind == RecordType::Txt && ours_only(r))
        .filter_map(|r| r.name.strip_prefix(MARKER_PREFIX))
        .filter(|name| !wanted.contains_key(*name))
        .collect();
    for name in stale {
        if let Some(a) = a_record(name) {
            out.changes.push(RecordChange::Delete(a.clone()));
        }
        if let Some(m) = marker(name) {
            out.changes.push(RecordChange::Delete(m.clone()));
        }
    }
    out
}

/// The record sets of the zone at or under `domain`: read from `domain` on,
/// a page (one call) at a time, until the first name outside it — in
/// Route53's order they all come together.
pub async fn records_under(dns: &dyn Dns, zone_id: &str, domain: &str) -> CloudResult<Vec<RecordSet>> {
    let mut out = vec![];
    let mut from = RecordCursor::at(domain);
    loop {
        let page = dns.records(zone_id, &from).await?;
        let inside = page.records.iter().take_while(|r| under(&r.name, domain)).count();
        let done = inside < page.records.len();
        out.extend(page.records.into_iter().take(inside));
        match page.next {
            Some(next) if !done && under(&next.name, domain) => from = next,
            _ => return Ok(out),
        }
    }
}

/// Makes the zone hold `wanted` (under `domain`) for `uid`: reads the zone,
/// plans, and applies the plan as one batch (none when nothing changes).
pub async fn sync(
    dns: &dyn Dns,
    zone_id: &str,
    domain: &str,
    uid: &str,
    ttl: u32,
    wanted: &Wanted,
    adopt: bool,
) -> CloudResult<RecordPlan> {
    let observed = records_under(dns, zone_id, domain).await?;
    let plan = plan(uid, ttl, wanted, &observed, adopt);
    if !plan.changes.is_empty() {
        dns.change(zone_id, &plan.changes).await?;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "4f0c";

    fn a(name: &str, ips: &[&str]) -> RecordSet {
        RecordSet {
            name: name.into(),
            kind: RecordType::A,
            ttl: 60,
            values: ips.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn marker(name: &str, uid: &str) -> RecordSet {
        RecordSet { name: marker_name(name), kind: RecordType::Txt, ttl: 60, values: vec![marker_value(uid)] }
    }

    fn want(entries: &[(&str, Option<&[&str]>)]) -> Wanted {
        entries.iter().map(|(n, ips)| (n.to_string(), ips.map(|i| i.iter().map(|s| s.to_string()).collect()))).collect()
    }

    #[test]
    fn what_a_pass_changes_as_a_table() {
        use RecordChange::*;
        let m0 = "p-0.p.internal";
        let m1 = "p-1.p.internal";
        // (what, wanted, observed, adopt) → (changes, conflicts, owned)
        type Case =
            (&'static str, Wanted, Vec<RecordSet>, bool, Vec<RecordChange>, Vec<&'static str>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (
                "a new record comes with its marker",
                want(&[(m0, Some(&["10.0.0.1"]))]),
                vec![],
                false,
                vec![Create(marker(m0, UID)), Create(a(m0, &["10.0.0.1"]))],
                vec![],
                vec![m0],
            ),
            (
                "settled: nothing",
                want(&[(m0, Some(&["10.0.0.1"]))]),
                vec![a(m0, &["10.0.0.1"]), marker(m0, UID)],
                false,
                vec![],
                vec![],
                vec![m0],
            ),
            (
                "a replaced member's new address",
                want(&[(m0, Some(&["10.0.0.9"]))]),
                vec![a(m0, &["10.0.0.1"]), marker(m0, UID)],
                false,
                vec![Upsert(a(m0, &["10.0.0.9"]))],
                vec![],
                vec![m0],
            ),
            (
                "values are compared as a set",
                want(&[("p.internal", Some(&["10.0.0.2", "10.0.0.1", "10.0.0.1"]))]),
                vec![a("p.internal", &["10.0.0.1", "10.0.0.2"]), marker("p.internal", UID)],
                false,
                vec![],
                vec![],
                vec!["p.internal"],
            ),
            (
                "no address yet: the old record stays",
                want(&[(m0, None)]),
                vec![a(m0, &["10.0.0.1"]), marker(m0, UID)],
                false,
                vec![],
                vec![],
                vec![m0],
            ),
            ("no address and no record: nothing", want(&[(m0, None)]), vec![], false, vec![], vec![], vec![]),
            (
                "someone else's record: a conflict, untouched",
                want(&[(m0, Some(&["10.0.0.1"]))]),
                vec![a(m0, &["192.168.1.1"])],
                false,
                vec![],
                vec![m0],
                vec![],
            ),
            (
                "another set's marker: a conflict, even when adopting",
                want(&[(m0, Some(&["10.0.0.1"]))]),
                vec![a(m0, &["10.0.0.5"]), marker(m0, "other")],
                true,
                vec![],
                vec![m0],
                vec![],
            ),
            (
                "adoption marks the record and sets it",
                want(&[(m0, Some(&["10.0.0.1"]))]),
                vec![a(m0, &["192.168.1.1"])],
                true,
                vec![Create(marker(m0, UID)), Upsert(a(m0, &["10.0.0.1"]))],
                vec![],
                vec![m0],
            ),
            (
                "a member scaled away: its record and marker go",
                want(&[(m0, Some(&["10.0.0.1"]))]),
                vec![a(m0, &["10.0.0.1"]), marker(m0, UID), a(m1, &["10.0.0.2"]), marker(m1, UID)],
                false,
                vec![Delete(a(m1, &["10.0.0.2"])), Delete(marker(m1, UID))],
                vec![],
                vec![m0],
            ),
            (
                "nothing wanted: every record of ours goes, others stay",
                want(&[]),
                vec![a(m0, &["10.0.0.1"]), marker(m0, UID), a(m1, &["10.0.0.2"]), marker(m1, "other")],
                false,
                vec![Delete(a(m0, &["10.0.0.1"])), Delete(marker(m0, UID))],
                vec![],
                vec![],
            ),
            (
                "a CNAME (or an alias, a weighted record) holds the name",
                want(&[(m0, Some(&["10.0.0.1"]))]),
                vec![RecordSet { name: m0.into(), kind: RecordType::Other, ttl: 0, values: vec![] }],
                true,
                vec![],
                vec![m0],
                vec![],
            ),
            (
                "a marker that holds other values too is not ours, and is not deleted",
                want(&[(m0, Some(&["10.0.0.1"]))]),
                vec![
                    a(m0, &["10.0.0.1"]),
                    RecordSet {
                        name: marker_name(m0),
                        kind: RecordType::Txt,
                        ttl: 60,
                        values: vec![marker_value(UID), "v=spf1".into()],
                    },
                    a(m1, &["10.0.0.2"]),
                    RecordSet {
                        name: marker_name(m1),
                        kind: RecordType::Txt,
                        ttl: 60,
                        values: vec![marker_value(UID), "v=spf1".into()],
                    },
                ],
                false,
                vec![],
                vec![m0],
                vec![],
            ),
            (
                "a marker left without its record (a crash between batches cannot, but a hand can)",
                want(&[(m0, Some(&["10.0.0.1"]))]),
                vec![marker(m0, UID)],
                false,
                vec![Create(a(m0, &["10.0.0.1"]))],
                vec![],
                vec![m0],
            ),
        ];
        for (what, wanted, observed, adopt, changes, conflicts, owned) in cases {
            let got = plan(UID, 60, &wanted, &observed, adopt);
            assert_eq!(got.changes, changes, "{what}");
            assert_eq!(got.conflicts, conflicts, "{what}");
            assert_eq!(got.owned, owned, "{what}");
        }
    }

    #[tokio::test]
    async fn a_domain_is_read_a_page_at_a_time_and_no_further() {
        let sim = crate::sim::SimCloud::new(crate::sim::SimConfig::default());
        let zone = sim.create_private_zone("internal");
        let put = |name: String| sim.put_dns_record(&zone, a(&name, &["10.0.0.1"]));
        for i in 0..650 {
            put(format!("pulse-{i}.pulse.internal"));
        }
        put("pulse.internal".into());
        // Before and after the domain in Route53's order.
        put("pulse-0.internal".into());
        put("zeta.internal".into());
        for i in 0..400 {
            put(format!("n{i}.zeta.internal"));
        }
        let dns = sim.dns();
        let before = sim.call_count(&crate::cloud::ops::LIST_RESOURCE_RECORD_SETS);
        let got = records_under(dns.as_ref(), &zone, "pulse.internal").await.unwrap();
        assert_eq!(got.len(), 651, "the domain and everything under it");
        assert!(got.iter().all(|r| crate::cloud::dns::under(&r.name, "pulse.internal")));
        let calls = sim.call_count(&crate::cloud::ops::LIST_RESOURCE_RECORD_SETS) - before;
        assert_eq!(calls, 3, "651 records are three pages, and the reading stops at the first name outside");
    }
}
