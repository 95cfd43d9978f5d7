//! Mooring's IAM policies, derived from its own code: the operation table
//! ([`crate::cloud::ops::ALL`]) says which AWS operations exist, [`table`]
//! says how each is scoped, and [`policy`] turns both into the policy of the
//! controller's task role and of the provisioner's CodeBuild role.
//! `mooring iam-policy` prints them; the CloudFormation template embeds them.
//!
//! ACK recommends `*FullAccess` managed policies for its controllers; here no
//! action is a wildcard, writes are held to resources tagged `mooring:uid`,
//! and roles can be passed only when the install names them.

pub mod table;

use serde_json::{Map, Value, json};

use crate::cloud::TAG_UID;

/// The role that makes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// `mooring serve`: the ECS task role.
    Controller,
    /// `mooring-provisioner`: the CodeBuild project's service role.
    Provisioner,
}

impl Principal {
    /// Both roles.
    pub const ALL: [Principal; 2] = [Principal::Controller, Principal::Provisioner];

    /// The policies the role's grants are split into.
    pub fn parts(self) -> &'static [PolicyPart] {
        match self {
            Principal::Controller => TASK_PARTS,
            Principal::Provisioner => PROVISIONER_PARTS,
        }
    }

    /// The part named `name` (`--part`).
    pub fn part(self, name: &str) -> Option<&'static PolicyPart> {
        self.parts().iter().find(|p| p.name == name)
    }

    /// The name used on the command line (`--role task|provisioner`).
    pub fn as_str(self) -> &'static str {
        match self {
            Principal::Controller => "task",
            Principal::Provisioner => "provisioner",
        }
    }
}

impl std::str::FromStr for Principal {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "task" | "controller" => Ok(Principal::Controller),
            "provisioner" => Ok(Principal::Provisioner),
            other => Err(format!("unknown role {other:?} (task or provisioner)")),
        }
    }
}

/// One policy of a role: the grants of the operations of some AWS services.
///
/// IAM holds all the inline policies of a role to 10,240 characters together,
/// and each managed policy to 6,144. The task role's grants outgrew the first
/// limit, so they are split by the service of the operation that needs them
/// into managed policies (a role may have ten attached); each part stays
/// under the managed limit with the longest install values (a test checks),
/// and a new capability grows only its own part. The provisioner's grants
/// fit one inline policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyPart {
    /// `--part`, and the suffix of the policy's CloudFormation resource
    /// (`TaskPolicyNodes`).
    pub name: &'static str,
    /// The services (`ecs` of `ecs:CreateService`) whose operations' grants
    /// it holds; empty: every service.
    pub services: &'static [&'static str],
    /// What the part lets the role do, for the policy's description.
    pub about: &'static str,
}

impl PolicyPart {
    /// Whether the grants of operation `op` (`ec2:CreateSnapshot`) belong here.
    pub fn holds(&self, op: &str) -> bool {
        let service = op.split(':').next().unwrap_or_default();
        self.services.is_empty() || self.services.contains(&service)
    }

    /// The CloudFormation logical name of the part's policy for `role`.
    pub fn logical_name(&self, role: Principal) -> String {
        let mut name = String::from(match role {
            Principal::Controller => "TaskPolicy",
            Principal::Provisioner => "ProvisionerPolicy",
        });
        let mut upper = true;
        for c in self.name.chars() {
            if c == '-' {
                upper = true;
            } else if upper {
                name.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                name.push(c);
            }
        }
        name
    }
}

/// The task role's managed policies.
pub const TASK_PARTS: &[PolicyPart] = &[
    PolicyPart {
        name: "services",
        services: &["ecs", "application-autoscaling", "logs", "secretsmanager", "sts"],
        about: "relays' and workers' ECS services, their scaling and logs; the signing key; who it runs as",
    },
    PolicyPart {
        name: "queues",
        services: &["sqs", "elasticache"],
        about: "workers' queues, relays' caches, the events queue",
    },
    PolicyPart {
        name: "nodes",
        services: &["ec2", "codebuild", "route53", "cloudwatch", "elasticloadbalancing"],
        about: "nodes: observing instances, snapshots of data volumes, provisioner builds, DNS records, alarms",
    },
];

/// The provisioner role's one inline policy.
pub const PROVISIONER_PARTS: &[PolicyPart] =
    &[PolicyPart { name: "all", services: &[], about: "instances, data volumes and target registrations" }];

/// IAM's limit on one managed policy (whitespace excluded).
pub const MANAGED_POLICY_LIMIT: usize = 6_144;

/// IAM's limit on a role's inline policies together (whitespace excluded).
pub const INLINE_POLICIES_LIMIT: usize = 10_240;

/// An ARN pattern in the install's partition (and Region and account, unless
/// the resource type has none there: IAM roles have no Region, public AMIs no
/// account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn {
    pub service: &'static str,
    /// The resource part, with wildcards (`service/*`).
    pub resource: &'static str,
    pub regional: bool,
    pub in_account: bool,
}

/// A resource the install creates or names for Mooring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstallRef {
    /// The SQS queue EventBridge feeds with ECS and EC2 events.
    EventsQueue,
    /// The Secrets Manager secret holding the revision-signing key.
    SigningKey,
    /// The roles relays and workers may run as (task and execution roles):
    /// the same list a guardrails policy allows.
    PassRoles,
    /// The provisioner's CodeBuild service role.
    ProvisionerRole,
}

/// The resources a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resources {
    /// `*`: for actions that support no resource-level permission.
    Any,
    Arns(&'static [Arn]),
    Install(InstallRef),
}

/// The condition a grant holds under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    None,
    /// The request carries a `mooring:uid` tag (a create, tagged at birth).
    CreatesTagged,
    /// The resource carries a `mooring:uid` tag.
    Owned,
    /// On a resource carrying `mooring:uid`, only `mooring:*` tag keys.
    OwnedMooringKeys,
    /// Adoption: the request adds `mooring:uid` and only `mooring:*` keys.
    Adopt,
    /// Tagging as part of a create (`ecs:CreateAction`, `ec2:CreateAction`).
    TagOnCreate {
        key: &'static str,
        actions: &'static [&'static str],
    },
    /// `iam:PassRole` to this service only.
    PassedTo(&'static [&'static str]),
    /// `iam:CreateServiceLinkedRole` for this service only.
    ServiceLinkedRole(&'static str),
}

/// Actions on resources under a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub actions: &'static [&'static str],
    pub resources: Resources,
    pub condition: Condition,
}

/// What one operation needs.
#[derive(Debug, Clone, Copy)]
pub struct Scoping {
    /// The operation (`ecs:CreateService`), as in [`crate::cloud::Op::name`].
    pub op: &'static str,
    /// The roles that make it.
    pub principals: &'static [Principal],
    /// The IAM actions it needs and where (IAM's names may differ:
    /// `sqs:DeleteMessageBatch` is authorized as `sqs:DeleteMessage`).
    pub grants: &'static [Grant],
    /// Why it is scoped so (shown in the docs and `--explain`).
    pub why: &'static str,
}

/// The scoping of an operation, from the table or the process's own calls.
pub fn scoping(op: &str) -> Option<&'static Scoping> {
    table::TABLE.iter().chain(table::PROCESS_CALLS).find(|s| s.op == op)
}

/// Every scoping, operations first.
pub fn all_scopings() -> impl Iterator<Item = &'static Scoping> {
    table::TABLE.iter().chain(table::PROCESS_CALLS)
}

/// The values a plain (not CloudFormation) policy is rendered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallValues {
    pub partition: String,
    /// A Region, or `*`.
    pub region: String,
    /// An account id, or `*`.
    pub account: String,
    pub events_queue_arn: Option<String>,
    pub signing_key_arn: Option<String>,
    pub pass_roles: Vec<String>,
    pub provisioner_role_arn: Option<String>,
}

impl Default for InstallValues {
    fn default() -> Self {
        InstallValues {
            partition: "aws".into(),
            region: "*".into(),
            account: "*".into(),
            events_queue_arn: None,
            signing_key_arn: None,
            pass_roles: Vec::new(),
            provisioner_role_arn: None,
        }
    }
}

/// How ARNs and install references are written.
#[derive(Debug, Clone, Copy)]
pub enum Render<'a> {
    /// Concrete strings; statements whose install reference has no value are
    /// left out (and listed by [`Policy::omitted`]).
    Plain(&'a InstallValues),
    /// CloudFormation: `Fn::Sub` with `AWS::Partition`, `AWS::Region` and
    /// `AWS::AccountId`, and references to the template's resources
    /// ([`CFN_NAMES`]).
    CloudFormation,
}

/// The logical names the CloudFormation rendering refers to; the template in
/// `deploy/aws/` defines them.
pub const CFN_NAMES: &[(InstallRef, &str)] = &[
    (InstallRef::EventsQueue, "EventsQueue"),
    (InstallRef::SigningKey, "SigningKeySecret"),
    (InstallRef::PassRoles, "PassRoleArns"),
    (InstallRef::ProvisionerRole, "ProvisionerRole"),
];

/// The CloudFormation condition that is true when `PassRoleArns` is not empty.
pub const CFN_HAS_PASS_ROLES: &str = "HasPassRoleArns";

/// A rendered policy and what was left out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The policy document (`Version`, `Statement`).
    pub document: Value,
    /// Statements left out because the install gave no value for them.
    pub omitted: Vec<String>,
}

/// One statement before rendering: a grant with every action that shares its
/// resources and condition.
#[derive(Debug, Clone)]
struct Statement {
    actions: Vec<&'static str>,
    resources: Resources,
    condition: Condition,
}

/// The grants of `principal` (in `part`, or all of them), merged: one
/// statement per (resources, condition), actions sorted, in the table's order.
fn statements(principal: Principal, part: Option<&PolicyPart>) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::new();
    let in_part = |s: &&Scoping| part.is_none_or(|p| p.holds(s.op));
    for scoping in all_scopings().filter(|s| s.principals.contains(&principal)).filter(in_part) {
        for grant in scoping.grants {
            match out.iter_mut().find(|s| s.resources == grant.resources && s.condition == grant.condition) {
                Some(s) => s.actions.extend(grant.actions),
                None => out.push(Statement {
                    actions: grant.actions.to_vec(),
                    resources: grant.resources,
                    condition: grant.condition,
                }),
            }
        }
    }
    for s in &mut out {
        s.actions.sort_unstable();
        s.actions.dedup();
    }
    out
}

/// Everything `principal` may do, as one document (what the role's policies
/// allow together; [`policies`] is how they are attached).
pub fn policy(principal: Principal, render: Render<'_>) -> Policy {
    rendered_policy(statements(principal, None), render)
}

/// The policies of `principal`, one per [`PolicyPart`].
pub fn policies(principal: Principal, render: Render<'_>) -> Vec<(&'static PolicyPart, Policy)> {
    principal.parts().iter().map(|part| (part, part_policy(principal, part, render))).collect()
}

/// The policy of one part of `principal`'s grants.
pub fn part_policy(principal: Principal, part: &PolicyPart, render: Render<'_>) -> Policy {
    rendered_policy(statements(principal, Some(part)), render)
}

fn rendered_policy(statements: Vec<Statement>, render: Render<'_>) -> Policy {
    let mut rendered = Vec::new();
    let mut omitted = Vec::new();
    let mut sids: Vec<String> = Vec::new();
    for s in statements {
        let sid = unique(&mut sids, sid(&s));
        let Some(resources) = resources(s.resources, render) else {
            omitted.push(format!("{sid} ({}): {}", s.actions.join(", "), missing_value(s.resources)));
            continue;
        };
        let mut statement = Map::new();
        statement.insert("Sid".into(), json!(sid));
        statement.insert("Effect".into(), json!("Allow"));
        statement.insert("Action".into(), json!(s.actions));
        statement.insert("Resource".into(), resources);
        if let Some(condition) = condition(s.condition) {
            statement.insert("Condition".into(), condition);
        }
        let statement = Value::Object(statement);
        rendered.push(match (render, s.resources) {
            // An empty list of roles would be an invalid Resource: the
            // statement exists only when the install names roles.
            (Render::CloudFormation, Resources::Install(InstallRef::PassRoles)) => {
                json!({"Fn::If": [CFN_HAS_PASS_ROLES, statement, {"Ref": "AWS::NoValue"}]})
            }
            _ => statement,
        });
    }
    Policy { document: json!({"Version": "2012-10-17", "Statement": rendered}), omitted }
}

fn missing_value(r: Resources) -> &'static str {
    match r {
        Resources::Install(InstallRef::EventsQueue) => "no --events-queue-arn",
        Resources::Install(InstallRef::SigningKey) => "no --signing-key-arn",
        Resources::Install(InstallRef::PassRoles) => "no --pass-role",
        Resources::Install(InstallRef::ProvisionerRole) => "no --provisioner-role-arn",
        _ => "",
    }
}

fn unique(seen: &mut Vec<String>, sid: String) -> String {
    let mut candidate = sid.clone();
    let mut n = 2;
    while seen.contains(&candidate) {
        candidate = format!("{sid}{n}");
        n += 1;
    }
    seen.push(candidate.clone());
    candidate
}

/// A readable statement id: the service and what the statement allows.
fn sid(s: &Statement) -> String {
    let service = s.actions.first().and_then(|a| a.split(':').next()).unwrap_or("Any");
    let service = match service {
        "ecs" => "Ecs",
        "sqs" => "Sqs",
        "elasticache" => "ElastiCache",
        "ec2" => "Ec2",
        "codebuild" => "CodeBuild",
        "elasticloadbalancing" => "TargetGroups",
        "secretsmanager" => "Secrets",
        "iam" => "Iam",
        "application-autoscaling" => "AppAutoScaling",
        "cloudwatch" => "CloudWatch",
        "logs" => "Logs",
        "route53" => "Route53",
        other => other,
    };
    let what = match (s.condition, s.resources) {
        (Condition::CreatesTagged, _) => "CreateTagged",
        (Condition::Owned, _) => "OwnedOnly",
        (Condition::OwnedMooringKeys, _) => "UntagOwned",
        (Condition::Adopt, _) => "Adopt",
        (Condition::TagOnCreate { .. }, _) => "TagOnCreate",
        (Condition::PassedTo(_), Resources::Install(InstallRef::PassRoles)) => "PassWorkloadRoles",
        (Condition::PassedTo(_), _) => "PassProvisionerRole",
        (Condition::ServiceLinkedRole(_), _) => "ServiceLinkedRole",
        (Condition::None, Resources::Any) => "NoResourceLevel",
        (Condition::None, Resources::Install(InstallRef::EventsQueue)) => "EventsQueue",
        (Condition::None, Resources::Install(InstallRef::SigningKey)) => "SigningKey",
        (Condition::None, _) => "Scoped",
    };
    // Statement ids are alphanumeric.
    format!("{service}{what}").chars().filter(char::is_ascii_alphanumeric).collect()
}

fn arn_string(a: &Arn, partition: &str, region: &str, account: &str) -> String {
    let region = if a.regional { region } else { "" };
    let account = if a.in_account { account } else { "" };
    format!("arn:{partition}:{}:{region}:{account}:{}", a.service, a.resource)
}

fn resources(r: Resources, render: Render<'_>) -> Option<Value> {
    match (r, render) {
        (Resources::Any, _) => Some(json!("*")),
        (Resources::Arns(arns), Render::Plain(v)) => {
            Some(json!(arns.iter().map(|a| arn_string(a, &v.partition, &v.region, &v.account)).collect::<Vec<_>>()))
        }
        (Resources::Arns(arns), Render::CloudFormation) => Some(json!(
            arns.iter()
                .map(|a| json!({"Fn::Sub": arn_string(a, "${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}")}))
                .collect::<Vec<_>>()
        )),
        (Resources::Install(i), Render::Plain(v)) => match i {
            InstallRef::EventsQueue => v.events_queue_arn.as_ref().map(|a| json!([a])),
            InstallRef::SigningKey => v.signing_key_arn.as_ref().map(|a| json!([a])),
            InstallRef::ProvisionerRole => v.provisioner_role_arn.as_ref().map(|a| json!([a])),
            InstallRef::PassRoles => (!v.pass_roles.is_empty()).then(|| json!(v.pass_roles)),
        },
        (Resources::Install(i), Render::CloudFormation) => {
            let name = CFN_NAMES.iter().find(|(r, _)| *r == i).map(|(_, n)| *n).unwrap_or("Missing");
            Some(match i {
                InstallRef::EventsQueue | InstallRef::ProvisionerRole => json!([{"Fn::GetAtt": [name, "Arn"]}]),
                InstallRef::SigningKey => json!([{"Ref": name}]),
                // A CommaDelimitedList parameter is a list already.
                InstallRef::PassRoles => json!({"Ref": name}),
            })
        }
    }
}

fn condition(c: Condition) -> Option<Value> {
    let request_tag = format!("aws:RequestTag/{TAG_UID}");
    let resource_tag = format!("aws:ResourceTag/{TAG_UID}");
    let mooring_keys = json!({"aws:TagKeys": ["mooring:*"]});
    Some(match c {
        Condition::None => return None,
        Condition::CreatesTagged => json!({"Null": {request_tag: "false"}}),
        Condition::Owned => json!({"Null": {resource_tag: "false"}}),
        Condition::OwnedMooringKeys => {
            json!({"Null": {resource_tag: "false"}, "ForAllValues:StringLike": mooring_keys})
        }
        Condition::Adopt => json!({"Null": {request_tag: "false"}, "ForAllValues:StringLike": mooring_keys}),
        Condition::TagOnCreate { key, actions } => json!({"StringEquals": {key: actions}}),
        Condition::PassedTo([service]) => json!({"StringEquals": {"iam:PassedToService": service}}),
        Condition::PassedTo(services) => json!({"StringEquals": {"iam:PassedToService": services}}),
        Condition::ServiceLinkedRole(service) => json!({"StringEquals": {"iam:AWSServiceName": service}}),
    })
}

/// Every IAM action a rendered policy allows (for checks).
pub fn allowed_actions(document: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for s in document["Statement"].as_array().into_iter().flatten() {
        let s = s.pointer("/Fn::If/1").unwrap_or(s);
        match &s["Action"] {
            Value::String(a) => out.push(a.clone()),
            Value::Array(list) => out.extend(list.iter().filter_map(|a| a.as_str().map(str::to_string))),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ops;

    #[test]
    fn every_operation_has_a_scoping_entry() {
        let missing: Vec<_> = ops::ALL.iter().filter(|o| scoping(o.name).is_none()).map(|o| o.name).collect();
        assert!(
            missing.is_empty(),
            "operations without an IAM scoping entry in runners/src/iam/table.rs: {missing:?}; \
             add one (which role calls it, on which resources, under which condition), \
             then regenerate the template with `make iam-policy`"
        );
    }

    #[test]
    fn every_entry_names_an_operation_once() {
        let mut names: Vec<_> = all_scopings().map(|s| s.op).collect();
        let stale: Vec<_> =
            table::TABLE.iter().filter(|s| !ops::ALL.iter().any(|o| o.name == s.op)).map(|s| s.op).collect();
        assert!(stale.is_empty(), "entries for operations not in ops::ALL: {stale:?}");
        names.sort();
        let len = names.len();
        names.dedup();
        assert_eq!(names.len(), len, "an operation has two entries");
        for s in all_scopings() {
            assert!(!s.principals.is_empty(), "{}: no role", s.op);
            assert!(!s.why.is_empty(), "{}: no reason", s.op);
        }
    }

    #[test]
    fn no_action_is_a_wildcard() {
        for s in all_scopings() {
            for g in s.grants {
                for a in g.actions {
                    assert!(a.contains(':') && !a.contains('*'), "{}: action {a:?}", s.op);
                }
            }
        }
        for p in Principal::ALL {
            for a in allowed_actions(&policy(p, Render::CloudFormation).document) {
                assert!(!a.contains('*'), "{a}");
            }
        }
    }

    #[test]
    fn writes_are_held_to_mooring_resources() {
        // Every mutating operation is allowed under a tag condition, or only
        // on the install's own resources, or where the action has no
        // resource-level permission; only the provisioner projects and the
        // target groups a spec names are held by name alone, and service
        // deployments by ARN. (RunInstances
        // also uses AMIs, subnets and security groups without a condition:
        // it creates nothing there.)
        for op in ops::ALL.iter().filter(|o| o.mutating) {
            let s = scoping(op.name).expect("an entry");
            let held = s.grants.iter().filter(|g| g.actions.contains(&op.name)).any(|g| {
                !matches!(g.condition, Condition::None) || matches!(g.resources, Resources::Install(_) | Resources::Any)
            });
            // Service deployments carry no tags: held by ARN, and Mooring
            // answers only the deployments of services its status records.
            let untaggable = ["ecs:ContinueServiceDeployment", "ecs:StopServiceDeployment"].contains(&op.name);
            // DNS record sets carry no tags: held to hosted zones (the
            // guardrails say which a namespace may name), and Mooring changes
            // only records marked as its own.
            // A node's alarms: by the name prefix only Mooring's alarms have.
            let node_alarms = ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"].contains(&op.name);
            let by_name = op.name.starts_with("codebuild:")
                || op.name.starts_with("elasticloadbalancing:")
                || op.name.starts_with("route53:")
                || node_alarms
                || untaggable;
            let install = s.grants.iter().all(|g| matches!(g.resources, Resources::Install(_)));
            assert!(held || by_name || install, "{}: no grant of it is held to Mooring's resources", op.name);
        }
    }

    #[test]
    fn plain_rendering_fills_the_install_values_and_lists_what_it_left_out() {
        let values = InstallValues {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            pass_roles: vec!["arn:aws:iam::123456789012:role/apps-*".into()],
            ..Default::default()
        };
        let p = policy(Principal::Controller, Render::Plain(&values));
        let text = p.document.to_string();
        assert!(text.contains("arn:aws:ecs:eu-west-1:123456789012:service/*"), "{text}");
        assert!(text.contains("arn:aws:iam::123456789012:role/apps-*"), "{text}");
        assert!(text.contains(r#""aws:RequestTag/mooring:uid":"false""#), "{text}");
        assert!(p.omitted.iter().any(|o| o.contains("--events-queue-arn")), "{:?}", p.omitted);
        assert!(p.omitted.iter().any(|o| o.contains("--signing-key-arn")), "{:?}", p.omitted);
        assert!(!text.contains("sqs:ReceiveMessage"), "left out without a queue");
        let prov = policy(Principal::Provisioner, Render::Plain(&values)).document.to_string();
        assert!(prov.contains("ec2:RunInstances") && !prov.contains("ecs:"), "{prov}");
    }

    #[test]
    fn every_operation_of_a_role_is_in_exactly_one_of_its_parts() {
        for p in Principal::ALL {
            for s in all_scopings().filter(|s| s.principals.contains(&p)) {
                let n = p.parts().iter().filter(|part| part.holds(s.op)).count();
                assert_eq!(n, 1, "{} of the {} role is in {n} parts", s.op, p.as_str());
            }
        }
        let whole = allowed_actions(&policy(Principal::Controller, Render::CloudFormation).document);
        let mut parts: Vec<String> = policies(Principal::Controller, Render::CloudFormation)
            .iter()
            .flat_map(|(_, p)| allowed_actions(&p.document))
            .collect();
        parts.sort();
        parts.dedup();
        assert_eq!(parts, whole, "the parts together allow what the role allows");
        assert_eq!(TASK_PARTS[2].logical_name(Principal::Controller), "TaskPolicyNodes");
    }

    #[test]
    fn policies_fit_the_iam_limits() {
        // IAM counts a role's inline policies together, whitespace excluded:
        // at most 10,240 characters; a managed policy, at most 6,144.
        let values = InstallValues {
            partition: "aws-us-gov".into(),
            region: "ap-southeast-2".into(),
            account: "123456789012".into(),
            events_queue_arn: Some("arn:aws-us-gov:sqs:ap-southeast-2:123456789012:mooring-production-events".into()),
            signing_key_arn: Some(
                "arn:aws-us-gov:secretsmanager:ap-southeast-2:123456789012:secret:mooring-production-signing-key-AbCdEf"
                    .into(),
            ),
            pass_roles: (0..5).map(|i| format!("arn:aws-us-gov:iam::123456789012:role/mooring-apps-{i}-*")).collect(),
            provisioner_role_arn: Some("arn:aws-us-gov:iam::123456789012:role/mooring-production-provisioner".into()),
        };
        let len = policy(Principal::Provisioner, Render::Plain(&values)).document.to_string().len();
        assert!(len < INLINE_POLICIES_LIMIT, "the provisioner's inline policy is {len} characters");
        assert_eq!(Principal::Provisioner.parts().len(), 1, "the provisioner has one inline policy");
        for (part, policy) in policies(Principal::Controller, Render::Plain(&values)) {
            let len = policy.document.to_string().len();
            assert!(len < MANAGED_POLICY_LIMIT, "the task role's {} policy is {len} characters", part.name);
        }
    }
}
