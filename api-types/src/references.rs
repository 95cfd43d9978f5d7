//! The AWS resources a document refers to but does not own: roles it passes,
//! secrets it reads, target groups it registers with, the cluster, subnets and
//! security groups it runs in, the CodeBuild project that provisions it and
//! the instance type it pays for.
//!
//! This is the one list of "what a spec can reference". Admission policies get
//! it as `input.references` (so the built-in guardrails policy and custom
//! Rego need not know where each reference sits in each kind), and the
//! security documentation is written from it.

use serde::{Deserialize, Serialize};

use crate::document::AnyResource;

/// What sort of AWS resource a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReferenceKind {
    /// An IAM role ARN the controller passes to ECS (`iam:PassRole`).
    Role,
    /// A Secrets Manager secret or SSM parameter ARN injected into a container.
    Secret,
    /// An ELBv2 target group ARN tasks or instances register with.
    TargetGroup,
    /// An ECS cluster name or ARN.
    Cluster,
    /// A VPC subnet id.
    Subnet,
    /// A security group id.
    SecurityGroup,
    /// The CodeBuild project that provisions a node.
    CodebuildProject,
    /// An EC2 instance type.
    InstanceType,
    /// A Route53 hosted zone a node set writes its members' records in.
    HostedZone,
    /// The IAM instance profile a node's instance runs with.
    InstanceProfile,
}

/// One reference: where it is in the document, what it names, and the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    /// Field path, e.g. `spec.containers[0].secrets.DB_PASSWORD`.
    pub field: String,
    #[serde(rename = "type")]
    pub kind: ReferenceKind,
    pub value: String,
}

impl AnyResource {
    /// Every AWS resource the document references, in document order.
    pub fn references(&self) -> Vec<Reference> {
        let mut out = Refs(Vec::new());
        match self {
            AnyResource::Relay(r) => {
                let s = &r.spec;
                out.push("spec.cluster", ReferenceKind::Cluster, &s.cluster);
                out.opt("spec.taskRoleArn", ReferenceKind::Role, s.task_role_arn.as_deref());
                out.opt("spec.executionRoleArn", ReferenceKind::Role, s.execution_role_arn.as_deref());
                for (i, c) in s.containers.iter().enumerate() {
                    out.secrets(&format!("spec.containers[{i}]"), c);
                }
                out.network(s.network.as_ref());
                if let Some(lb) = &s.load_balancer {
                    out.push("spec.loadBalancer.targetGroupArn", ReferenceKind::TargetGroup, &lb.target_group_arn);
                    let alternate = lb.alternate_target_group_arn.as_deref();
                    out.opt("spec.loadBalancer.alternateTargetGroupArn", ReferenceKind::TargetGroup, alternate);
                    out.opt("spec.loadBalancer.roleArn", ReferenceKind::Role, lb.role_arn.as_deref());
                }
            }
            AnyResource::Worker(r) => {
                let s = &r.spec;
                out.push("spec.cluster", ReferenceKind::Cluster, &s.cluster);
                out.opt("spec.taskRoleArn", ReferenceKind::Role, s.task_role_arn.as_deref());
                out.opt("spec.executionRoleArn", ReferenceKind::Role, s.execution_role_arn.as_deref());
                out.secrets("spec.container", &s.container);
                for (i, c) in s.sidecars.iter().enumerate() {
                    out.secrets(&format!("spec.sidecars[{i}]"), c);
                }
                out.network(s.network.as_ref());
            }
            AnyResource::Node(r) => out.node("spec", &r.spec),
            AnyResource::NodeSet(r) => {
                out.node("spec.template", &r.spec.template);
                for (i, s) in r.spec.subnet_ids.iter().enumerate() {
                    out.push(&format!("spec.subnetIds[{i}]"), ReferenceKind::Subnet, s);
                }
                if let Some(d) = &r.spec.discovery {
                    out.push("spec.discovery.privateZoneId", ReferenceKind::HostedZone, &d.private_zone_id);
                }
            }
            AnyResource::Policy(_) => {}
        }
        out.0
    }
}

struct Refs(Vec<Reference>);

impl Refs {
    fn push(&mut self, field: &str, kind: ReferenceKind, value: &str) {
        self.0.push(Reference { field: field.to_string(), kind, value: value.to_string() });
    }

    fn opt(&mut self, field: &str, kind: ReferenceKind, value: Option<&str>) {
        if let Some(v) = value {
            self.push(field, kind, v);
        }
    }

    fn secrets(&mut self, path: &str, c: &crate::common::Container) {
        for (name, arn) in &c.secrets {
            self.push(&format!("{path}.secrets.{name}"), ReferenceKind::Secret, &arn.0);
        }
    }

    fn node(&mut self, path: &str, s: &crate::node::NodeSpec) {
        self.push(&format!("{path}.instanceType"), ReferenceKind::InstanceType, &s.instance_type);
        self.push(&format!("{path}.subnetId"), ReferenceKind::Subnet, &s.subnet_id);
        for (i, sg) in s.security_group_ids.iter().enumerate() {
            self.push(&format!("{path}.securityGroupIds[{i}]"), ReferenceKind::SecurityGroup, sg);
        }
        if let Some(lb) = &s.load_balancer {
            self.push(&format!("{path}.loadBalancer.targetGroupArn"), ReferenceKind::TargetGroup, &lb.target_group_arn);
        }
        let project = &s.provisioner.codebuild_project;
        self.push(&format!("{path}.provisioner.codebuildProject"), ReferenceKind::CodebuildProject, project);
        self.opt(&format!("{path}.instanceProfile"), ReferenceKind::InstanceProfile, s.instance_profile.as_deref());
    }

    fn network(&mut self, network: Option<&crate::common::Network>) {
        let Some(n) = network else { return };
        for (i, s) in n.subnets.iter().enumerate() {
            self.push(&format!("spec.network.subnets[{i}]"), ReferenceKind::Subnet, s);
        }
        for (i, sg) in n.security_groups.iter().enumerate() {
            self.push(&format!("spec.network.securityGroups[{i}]"), ReferenceKind::SecurityGroup, sg);
        }
    }
}
