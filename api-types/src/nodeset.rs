//! `NodeSet`: the StatefulSet idea for EC2. A set keeps `replicas` members with
//! stable ordinal names (`pulse-0`, `pulse-1`, …); each member is a [`Node`]
//! resource the controller writes from the set's `template`, with its own data
//! volume that survives the member's replacement. A template change replaces
//! members one at a time, highest ordinal first, each waiting until the one
//! before is `Ready` again; `partition` keeps the members below it on the old
//! template (a canary).
//!
//! [`Node`]: crate::node::Node

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::document::{Resource, Spec};
use crate::meta::Kind;
use crate::node::NodeSpec;
use crate::patterns;
use crate::validate::{Validate, Violations};

/// A NodeSet document.
pub type NodeSet = Resource<NodeSetSpec, NodeSetStatus>;

/// The label every member carries: the name of its set.
pub const SET_LABEL: &str = "mooring/nodeset";
/// The label every member carries: its ordinal.
pub const ORDINAL_LABEL: &str = "mooring/ordinal";
/// The annotation on every member: the set revision its spec was rendered from.
pub const REVISION_ANNOTATION: &str = "mooring/nodeset-revision";
/// The annotation on every member: when the set last wrote its spec (RFC 3339);
/// the progress deadline counts from it.
pub const WRITTEN_ANNOTATION: &str = "mooring/nodeset-written-at";
/// The most members a set may have.
pub const MAX_REPLICAS: u32 = 100;
/// The longest set name: a member's name (`{set}-{ordinal}`) must still be a
/// DNS label of at most 63 characters.
pub const MAX_NAME_LEN: usize = 59;

/// What a set wants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSetSpec {
    /// How many members (ordinals `0..replicas`).
    #[serde(default = "one")]
    #[schemars(range(max = 100))]
    pub replicas: u32,
    /// The Node every member is. Members are spread over `subnetIds` when it
    /// is given (member `i` in `subnetIds[i % len]`), otherwise all run in
    /// `template.subnetId`. Each member's environment also gets
    /// `MOORING_NODESET` (the set's name) and `MOORING_ORDINAL`.
    pub template: NodeSpec,
    /// Subnets (in different availability zones, usually) to spread the
    /// members over, round-robin by ordinal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(regex(pattern = patterns::SUBNET_ID)))]
    pub subnet_ids: Vec<String>,
    /// How a template change reaches the members.
    #[serde(default)]
    pub update_strategy: SetUpdateStrategy,
    /// How long a replaced or new member may take to become `Ready` before the
    /// set reports `Degraded` (the rollout waits either way).
    #[serde(default = "default_deadline")]
    #[schemars(range(min = 30, max = 86400))]
    pub progress_deadline_seconds: u32,
    /// DNS records for the members in a Route53 private hosted zone, so
    /// nodes find each other by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<Discovery>,
}

/// Peer discovery through Route53 private DNS: an A record per member
/// (`{set}-{ordinal}.{domain}` → its private IP) and one for the set
/// (`{domain}` → the private IP of every `Ready` member). Each member's
/// environment gets `MOORING_PEERS` (the members' names, comma-separated) and
/// `MOORING_PEERS_DNS` (`domain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discovery {
    /// The private hosted zone (it must exist; Mooring writes records in it
    /// and never creates or deletes the zone).
    #[schemars(regex(pattern = patterns::HOSTED_ZONE_ID))]
    pub private_zone_id: String,
    /// The name under which the members are published: the zone's name or a
    /// name under it (`pulse.internal`). At most 181 characters, so every
    /// member's name and its `_mooring.` marker stay within DNS's 253.
    #[schemars(length(min = 1, max = 181), regex(pattern = patterns::DNS_NAME))]
    pub domain: String,
    /// TTL of the records.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 5, max = 86400))]
    pub ttl_seconds: u32,
}

fn default_ttl() -> u32 {
    60
}

fn one() -> u32 {
    1
}

fn default_deadline() -> u32 {
    600
}

/// How a template change is rolled out over the members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetUpdateStrategy {
    /// How many members may be not `Ready` at once because of the rollout.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub max_unavailable: u32,
    /// Members with an ordinal below this keep their current template: only
    /// `partition..replicas` are updated (0 updates every member).
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub partition: u32,
}

impl Default for SetUpdateStrategy {
    fn default() -> Self {
        SetUpdateStrategy { max_unavailable: 1, partition: 0 }
    }
}

impl Spec for NodeSetSpec {
    const KIND: Kind = Kind::NodeSet;
}

impl Validate for NodeSetSpec {
    fn validate(&self, path: &str, v: &mut Violations) {
        self.template.validate(&format!("{path}.template"), v);
        let mut seen = std::collections::BTreeSet::new();
        for (i, s) in self.subnet_ids.iter().enumerate() {
            if !seen.insert(s) {
                v.push(format!("{path}.subnetIds[{i}]"), format!("subnet {s} is listed twice"));
            }
        }
        if let Some(d) = &self.discovery
            && let Some(label) = d.domain.split('.').find(|l| l.len() > 63)
        {
            v.push(format!("{path}.discovery.domain"), format!("label {label:?} is longer than 63 characters"));
        }
    }
}

impl Discovery {
    /// The DNS name of member `ordinal` of set `set`.
    pub fn member_record(&self, set: &str, ordinal: u32) -> String {
        format!("{}.{}", member_name(set, ordinal), self.domain)
    }
}

/// The name of member `ordinal` of set `set`.
pub fn member_name(set: &str, ordinal: u32) -> String {
    format!("{set}-{ordinal}")
}

impl NodeSetSpec {
    /// The Node spec of member `ordinal`: the template in its subnet, with the
    /// set's name and the ordinal in its environment, and with discovery the
    /// peers' DNS names.
    ///
    /// `MOORING_PEERS` lists the members `0..replicas` as of the member's
    /// write: a change of `replicas` alone rewrites no member (that would
    /// restart every node), so members created earlier list fewer peers.
    /// `MOORING_PEERS_DNS` always answers with every `Ready` member.
    pub fn member_spec(&self, set: &str, ordinal: u32) -> NodeSpec {
        let mut spec = self.template.clone();
        if !self.subnet_ids.is_empty() {
            spec.subnet_id = self.subnet_ids[ordinal as usize % self.subnet_ids.len()].clone();
        }
        spec.env.insert("MOORING_NODESET".into(), set.to_string());
        spec.env.insert("MOORING_ORDINAL".into(), ordinal.to_string());
        if let Some(d) = &self.discovery {
            let peers: Vec<String> = (0..self.replicas).map(|i| d.member_record(set, i)).collect();
            spec.env.insert("MOORING_PEERS".into(), peers.join(","));
            spec.env.insert("MOORING_PEERS_DNS".into(), d.domain.clone());
        }
        spec
    }

    /// The set's update revision: a short hash of what every member is
    /// rendered from. Members written from another revision are outdated.
    /// The discovery domain is part of it (it is in the members'
    /// environment); the zone and TTL are not.
    pub fn revision(&self) -> String {
        let hash = match &self.discovery {
            None => crate::hash::spec_hash(&(&self.template, &self.subnet_ids)),
            Some(d) => crate::hash::spec_hash(&(&self.template, &self.subnet_ids, &d.domain)),
        };
        hash.0.chars().take(10).collect()
    }
}

/// What Mooring observed about a set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Members that exist with an ordinal below `replicas`.
    #[serde(default)]
    pub replicas: u32,
    /// Members that are `Ready` at their latest generation.
    #[serde(default)]
    pub ready_replicas: u32,
    /// Members written from `updateRevision`.
    #[serde(default)]
    pub updated_replicas: u32,
    /// The revision of the current template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// Every member, by ordinal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
    /// Where the set's DNS records are: recorded before the first record is
    /// written there, and cleared only once none of them is left, so records
    /// are removed from where they were made even after `spec.discovery`
    /// changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryStatus>,
}

/// The DNS records of a set, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryStatus {
    /// The zone the records are in.
    pub private_zone_id: String,
    /// The domain they are under.
    pub domain: String,
    /// The A records the set holds there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<String>,
}

crate::status::impl_status!(NodeSetStatus);

/// One member as the set sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub name: String,
    pub ordinal: u32,
    /// The set revision the member's spec was written from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// `Ready` at its latest generation.
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NodeSetSpec {
        serde_json::from_value(serde_json::json!({
            "replicas": 3,
            "subnetIds": ["subnet-a", "subnet-b"],
            "template": {
                "software": {"name": "pulse", "version": "1.0", "artifact": "s3://b/pulse"},
                "instanceType": "t3.small", "ami": "ami-12345678", "subnetId": "subnet-z",
                "env": {"LOG": "info"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn members_are_spread_over_the_subnets_and_know_their_ordinal() {
        let s = spec();
        let subnets: Vec<String> = (0..3).map(|i| s.member_spec("pulse", i).subnet_id).collect();
        assert_eq!(subnets, ["subnet-a", "subnet-b", "subnet-a"]);
        let m = s.member_spec("pulse", 2);
        assert_eq!(m.env["MOORING_ORDINAL"], "2");
        assert_eq!(m.env["MOORING_NODESET"], "pulse");
        assert_eq!(m.env["LOG"], "info");
        assert_eq!(member_name("pulse", 2), "pulse-2");
        let mut one_subnet = s.clone();
        one_subnet.subnet_ids.clear();
        assert_eq!(one_subnet.member_spec("pulse", 1).subnet_id, "subnet-z");
    }

    #[test]
    fn the_revision_follows_the_template_not_the_replica_count() {
        let s = spec();
        let mut scaled = s.clone();
        scaled.replicas = 5;
        scaled.update_strategy.partition = 2;
        assert_eq!(s.revision(), scaled.revision());
        let mut upgraded = s.clone();
        upgraded.template.software.version = "1.1".into();
        assert_ne!(s.revision(), upgraded.revision());
        assert_eq!(s.revision().len(), 10);
    }
}
