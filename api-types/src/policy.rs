//! `Policy`: an admission policy, evaluated before any document is stored.
//!
//! A policy is either the built-in **guardrails** policy, driven by allow-lists
//! of the AWS resources each namespace may reference ([`Guardrails`]), or a
//! custom Rego module. Policies are documents like the others: versioned,
//! signed in the history, synced from git. A Policy without
//! `metadata.namespace` is cluster-scoped and judges every namespace; a
//! namespaced one judges only its own namespace. Only admin scopes may write
//! policies. The evaluation itself (Rego, with the `regorus` interpreter) lives
//! in `desired_state::admission`; this module is the document and its data.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::document::{Resource, Spec};
use crate::meta::Kind;
use crate::validate::{Validate, Violations};

/// A Policy document.
pub type Policy = Resource<PolicySpec, PolicyStatus>;

/// The Rego package every custom policy module declares. Its `deny` rule is a
/// set of `{"field": "spec.x", "message": "..."}` objects (or plain strings):
/// each one refuses the document.
pub const REGO_PACKAGE: &str = "mooring.admission";

/// What a policy checks, and against which documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// The kinds the policy judges; every workload kind (Node, NodeSet, Relay, Worker)
    /// when empty. Policies never judge Policy documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<Kind>,
    /// The built-in guardrails policy with these allow-lists. Exactly one of
    /// `guardrails` and `rego` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrails: Option<Guardrails>,
    /// A Rego module in package `mooring.admission` whose `deny` set lists
    /// violations as `{"field": ..., "message": ...}` objects or strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 65536))]
    pub rego: Option<String>,
    /// Data for a custom Rego module, visible to it as `data.policy`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, Value>,
}

/// Policies are not reconciled against AWS; the server keeps no status for them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyStatus {}

/// The data of the built-in guardrails policy: what each namespace's documents
/// may reference.
///
/// This is also the list an operator's IAM setup starts from: the role ARN
/// patterns use IAM's wildcards (`*` any run of characters, `?` one character),
/// so `roleArns` can be copied into the `Resource` of an `iam:PassRole`
/// statement, and the other lists name the resources the controller's role
/// needs to act on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Guardrails {
    /// Allow-lists per namespace, by namespace name.
    #[serde(default)]
    pub namespaces: BTreeMap<String, Allowances>,
    /// Allow-lists for every namespace not in `namespaces`. Without it, this
    /// policy does not restrict those namespaces; with empty lists
    /// (`roleArns: []`, ...) it refuses every such reference there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_namespaces: Option<Allowances>,
}

/// What one namespace may reference. A list that is absent does not restrict;
/// a list that is present, even empty, allows only what it names. Patterns
/// match the whole value, with `*` for any run of characters and `?` for one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Allowances {
    /// IAM role ARN patterns for `executionRoleArn` and `taskRoleArn`
    /// (e.g. `arn:aws:iam::123456789012:role/team-a-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arns: Option<Vec<String>>,
    /// Prefixes of the Secrets Manager or SSM parameter ARNs containers may read
    /// (e.g. `arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_arn_prefixes: Option<Vec<String>>,
    /// Target group ARN patterns for `loadBalancer.targetGroupArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arns: Option<Vec<String>>,
    /// ECS cluster name or ARN patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<String>>,
    /// Subnet id patterns (tasks' `network.subnets`, nodes' `subnetId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets: Option<Vec<String>>,
    /// Security group id patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    /// CodeBuild project name patterns for nodes' `provisioner.codebuildProject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codebuild_projects: Option<Vec<String>>,
    /// EC2 instance type patterns for nodes (e.g. `t3.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_types: Option<Vec<String>>,
    /// IAM instance profile patterns (names or ARNs) nodes may run with
    /// (`instanceProfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profiles: Option<Vec<String>>,
    /// Route53 hosted zone ids node sets may publish their members in
    /// (`spec.discovery.privateZoneId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zones: Option<Vec<String>>,
    /// The largest `scaling.max` a Relay or Worker may ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<u32>,
}

impl Spec for PolicySpec {
    const KIND: Kind = Kind::Policy;
}

impl PolicySpec {
    /// The kinds this policy judges.
    pub fn judged_kinds(&self) -> Vec<Kind> {
        if self.kinds.is_empty() { Kind::RECONCILED.to_vec() } else { self.kinds.clone() }
    }
}

impl Validate for PolicySpec {
    fn validate(&self, path: &str, v: &mut Violations) {
        match (&self.guardrails, &self.rego) {
            (Some(_), Some(_)) => v.push(format!("{path}.rego"), "set either guardrails or rego, not both"),
            (None, None) => v.push(path.to_string(), "set guardrails (the built-in policy) or rego (a custom module)"),
            _ => {}
        }
        if self.rego.is_none() && !self.data.is_empty() {
            v.push(format!("{path}.data"), "is only read by a custom rego module");
        }
        for (i, k) in self.kinds.iter().enumerate() {
            if !k.is_reconciled() {
                v.push(format!("{path}.kinds[{i}]"), "policies judge Node, NodeSet, Relay and Worker documents only");
            }
        }
        if let Some(g) = &self.guardrails {
            let lists = g.namespaces.iter().map(|(ns, a)| (format!("{path}.guardrails.namespaces.{ns}"), a));
            let other = g.other_namespaces.iter().map(|a| (format!("{path}.guardrails.otherNamespaces"), a));
            for (at, allowances) in lists.chain(other) {
                allowances.validate(&at, v);
            }
            for ns in g.namespaces.keys() {
                if !crate::validate::matches(crate::patterns::DNS_LABEL, ns) {
                    v.push(format!("{path}.guardrails.namespaces.{ns}"), "must be a namespace name (a DNS-1123 label)");
                }
            }
        }
    }
}

impl Allowances {
    fn validate(&self, path: &str, v: &mut Violations) {
        let lists = [
            ("roleArns", &self.role_arns),
            ("secretArnPrefixes", &self.secret_arn_prefixes),
            ("targetGroupArns", &self.target_group_arns),
            ("clusters", &self.clusters),
            ("subnets", &self.subnets),
            ("securityGroups", &self.security_groups),
            ("codebuildProjects", &self.codebuild_projects),
            ("instanceTypes", &self.instance_types),
            ("hostedZones", &self.hosted_zones),
            ("instanceProfiles", &self.instance_profiles),
        ];
        for (name, list) in lists {
            for (i, entry) in list.iter().flatten().enumerate() {
                if entry.trim().is_empty() {
                    v.push(format!("{path}.{name}[{i}]"), "must not be empty");
                } else if entry.chars().any(|c| matches!(c, '[' | ']' | '{' | '}' | '\\')) {
                    v.push(format!("{path}.{name}[{i}]"), "patterns use only * and ? as wildcards");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Result<(), Vec<String>> {
        let spec: PolicySpec = serde_json::from_value(v).map_err(|e| vec![e.to_string()])?;
        let mut violations = Violations::default();
        spec.validate("spec", &mut violations);
        violations.into_result().map_err(|e| e.0.into_iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn rules_of_a_policy_spec() {
        let cases = [
            (serde_json::json!({"guardrails": {}}), None),
            (serde_json::json!({"rego": "package mooring.admission"}), None),
            (serde_json::json!({}), Some("spec: set guardrails")),
            (serde_json::json!({"guardrails": {}, "rego": "x"}), Some("spec.rego: set either")),
            (serde_json::json!({"guardrails": {}, "data": {"a": 1}}), Some("spec.data: is only read")),
            (serde_json::json!({"guardrails": {}, "kinds": ["Policy"]}), Some("spec.kinds[0]: policies judge")),
            (
                serde_json::json!({"guardrails": {"namespaces": {"Team_A": {}}}}),
                Some("spec.guardrails.namespaces.Team_A: must be a namespace"),
            ),
            (
                serde_json::json!({"guardrails": {"otherNamespaces": {"roleArns": ["arn:[ab]"]}}}),
                Some("spec.guardrails.otherNamespaces.roleArns[0]: patterns use only"),
            ),
        ];
        for (doc, want) in cases {
            match (spec(doc.clone()), want) {
                (Ok(()), None) => {}
                (Err(errors), Some(w)) => assert!(errors.iter().any(|e| e.starts_with(w)), "{doc}: {errors:?}"),
                (got, want) => panic!("{doc}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn judged_kinds_default_to_the_workloads() {
        let s =
            PolicySpec { kinds: vec![], guardrails: Some(Guardrails::default()), rego: None, data: BTreeMap::new() };
        assert_eq!(s.judged_kinds(), vec![Kind::Node, Kind::Relay, Kind::Worker, Kind::NodeSet]);
    }
}
