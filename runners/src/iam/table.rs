//! What each AWS operation needs in IAM: which role makes it, on which
//! resources, under which condition. One entry per operation of
//! [`ops::ALL`](crate::cloud::ops::ALL) (a unit test fails when one is
//! missing) plus the process's own calls ([`PROCESS_CALLS`]).
//!
//! The rules the entries follow:
//! - Reads: every resource of the type in the account and Region (or `*`
//!   where the action has no resource-level permission): observing must see
//!   what is not Mooring's, to report a `Conflict` instead of overwriting it.
//! - Creates: only with a `mooring:uid` tag in the request, and the tagging
//!   that creating with tags needs (`ecs:CreateAction`, `ec2:CreateAction`,
//!   `sqs:TagQueue`, `elasticache:AddTagsToResource`).
//! - Updates and deletes: only resources that carry a `mooring:uid` tag.
//! - Tagging: resources that carry `mooring:uid` (the user's `spec.tags`
//!   follow the spec, keys removed from it are removed), or, for adoption
//!   (`mooring/adopt: "true"`), adding `mooring:*` tags including `mooring:uid`
//!   to a resource that has none yet. Untagging (deletion policy `Retain`, a
//!   key removed from `spec.tags`) only on Mooring's resources; on EC2
//!   (the provisioner) only `mooring:*` keys.
//! - Roles passed to AWS: only those the install names, and only to the
//!   service that needs them.
//! - Resources the install creates for Mooring itself (the events queue, the
//!   signing-key secret): exactly those.

use super::{Arn, Condition, Grant, InstallRef, Principal, Resources, Scoping};

use Principal::{Controller, Provisioner};

const CONTROLLER: &[Principal] = &[Controller];
const PROVISIONER: &[Principal] = &[Provisioner];
const BOTH: &[Principal] = &[Controller, Provisioner];

const fn arn(service: &'static str, resource: &'static str) -> Arn {
    Arn { service, resource, regional: true, in_account: true }
}

// ECS
const ECS_SERVICES: &[Arn] = &[arn("ecs", "service/*")];
const ECS_TASK_DEFINITIONS: &[Arn] = &[arn("ecs", "task-definition/*")];
const ECS_TASKS: &[Arn] = &[arn("ecs", "task/*")];
/// Service deployments (`service-deployment/CLUSTER/SERVICE/ID`): they carry
/// no tags, so they are held by ARN alone.
const ECS_SERVICE_DEPLOYMENTS: &[Arn] = &[arn("ecs", "service-deployment/*")];
/// The alarms Mooring writes: a node's (`mooring-node-<uid>-<which>`), and
/// those target tracking makes for `aws-native` scaling. One list for both,
/// so the task policy has one statement for them (IAM's inline size limit).
const MOORING_ALARMS: &[Arn] =
    &[arn("cloudwatch", "alarm:mooring-node-*"), arn("cloudwatch", "alarm:TargetTracking-*")];
const ECS_TAGGABLE: &[Arn] = &[arn("ecs", "service/*"), arn("ecs", "task-definition/*")];
const ECS_SERVICE_LINKED_ROLE: &[Arn] = &[Arn {
    service: "iam",
    resource: "role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
    regional: false,
    in_account: true,
}];

// SQS: queue names are the spec's (`spec.queue.name`), so any queue of the
// account and Region; writes are held to Mooring's by the tag condition.
const QUEUES: &[Arn] = &[arn("sqs", "*")];

// ElastiCache
const REPLICATION_GROUPS: &[Arn] = &[arn("elasticache", "replicationgroup:*")];
const CACHE_CREATE: &[Arn] = &[
    arn("elasticache", "replicationgroup:*"),
    arn("elasticache", "cluster:*"),
    arn("elasticache", "parametergroup:*"),
    arn("elasticache", "subnetgroup:*"),
    arn("elasticache", "securitygroup:*"),
    arn("elasticache", "usergroup:*"),
    arn("elasticache", "snapshot:*"),
];
const CACHE_TAGGABLE: &[Arn] = &[arn("elasticache", "replicationgroup:*"), arn("elasticache", "cluster:*")];
const CACHE_CLUSTERS: &[Arn] = &[arn("elasticache", "cluster:*")];
const ELASTICACHE_SERVICE_LINKED_ROLE: &[Arn] = &[Arn {
    service: "iam",
    resource: "role/aws-service-role/elasticache.amazonaws.com/AWSServiceRoleForElastiCache",
    regional: false,
    in_account: true,
}];

// Application Auto Scaling: targets on Mooring's ECS services (`aws-native`
// scaling); the alarms target tracking makes on the caller's behalf are in
// MOORING_ALARMS.
const SCALABLE_TARGETS: &[Arn] = &[arn("application-autoscaling", "scalable-target/*")];
// CloudWatch Logs: the log groups Mooring's task definitions name.
const WORKLOAD_LOG_GROUPS: &[Arn] = &[arn("logs", "log-group:/mooring/*")];
const APP_AUTOSCALING_SERVICE_LINKED_ROLE: &[Arn] = &[Arn {
    service: "iam",
    resource: "role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
    regional: false,
    in_account: true,
}];

// EC2
const INSTANCES: &[Arn] = &[arn("ec2", "instance/*")];
const VOLUMES: &[Arn] = &[arn("ec2", "volume/*")];
const INSTANCES_AND_VOLUMES: &[Arn] = &[arn("ec2", "instance/*"), arn("ec2", "volume/*")];
/// EBS snapshots: their ARNs carry no account.
const SNAPSHOTS: &[Arn] = &[Arn { service: "ec2", resource: "snapshot/*", regional: true, in_account: false }];
/// What RunInstances uses or creates besides the tagged instance and volume:
/// the AMI (any owner), the network, the key pair, snapshots behind the AMI.
const RUN_INSTANCES_INPUTS: &[Arn] = &[
    Arn { service: "ec2", resource: "image/*", regional: true, in_account: false },
    arn("ec2", "network-interface/*"),
    arn("ec2", "subnet/*"),
    arn("ec2", "security-group/*"),
    arn("ec2", "key-pair/*"),
    Arn { service: "ec2", resource: "snapshot/*", regional: true, in_account: false },
    arn("ec2", "launch-template/*"),
    arn("ec2", "placement-group/*"),
];

// CodeBuild: the provisioner projects Mooring creates and starts
// (`spec.provisioner.codebuildProject`, default `mooring-node-provisioner`).
const PROVISIONER_PROJECTS: &[Arn] = &[arn("codebuild", "project/mooring-*")];

// Route53: the private hosted zones node sets name (`spec.discovery`); zones
// are global and carry no account in their ARN.
const HOSTED_ZONES: &[Arn] =
    &[Arn { service: "route53", resource: "hostedzone/*", regional: false, in_account: false }];

// ELBv2: target groups the node specs name (they belong to the user).
const TARGET_GROUPS: &[Arn] = &[arn("elasticloadbalancing", "targetgroup/*/*")];

const fn grant(actions: &'static [&'static str], resources: Resources, condition: Condition) -> Grant {
    Grant { actions, resources, condition }
}

const fn read(actions: &'static [&'static str], arns: &'static [Arn]) -> Grant {
    grant(actions, Resources::Arns(arns), Condition::None)
}

const fn any(actions: &'static [&'static str]) -> Grant {
    grant(actions, Resources::Any, Condition::None)
}

const fn owned(actions: &'static [&'static str], arns: &'static [Arn]) -> Grant {
    grant(actions, Resources::Arns(arns), Condition::Owned)
}

const fn creates_tagged(actions: &'static [&'static str], arns: &'static [Arn]) -> Grant {
    grant(actions, Resources::Arns(arns), Condition::CreatesTagged)
}

const fn entry(
    op: &'static str,
    principals: &'static [Principal],
    grants: &'static [Grant],
    why: &'static str,
) -> Scoping {
    Scoping { op, principals, grants, why }
}

/// The roles the install allows, passed to ECS: task and execution roles (to
/// `ecs-tasks`), and a staged rollout's load balancer role (to `ecs`).
const PASS_WORKLOAD_ROLES: Grant = grant(
    &["iam:PassRole"],
    Resources::Install(InstallRef::PassRoles),
    Condition::PassedTo(&["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]),
);

/// The scoping of every operation in the operation table.
pub const TABLE: &[Scoping] = &[
    // ECS
    entry("ecs:DescribeServices", CONTROLLER, &[read(&["ecs:DescribeServices"], ECS_SERVICES)], "observe services"),
    entry(
        "ecs:CreateService",
        CONTROLLER,
        &[
            creates_tagged(&["ecs:CreateService"], ECS_SERVICES),
            grant(
                &["ecs:TagResource"],
                Resources::Arns(ECS_TAGGABLE),
                Condition::TagOnCreate {
                    key: "ecs:CreateAction",
                    actions: &["CreateService", "RegisterTaskDefinition"],
                },
            ),
            grant(
                &["iam:CreateServiceLinkedRole"],
                Resources::Arns(ECS_SERVICE_LINKED_ROLE),
                Condition::ServiceLinkedRole("ecs.amazonaws.com"),
            ),
            PASS_WORKLOAD_ROLES,
        ],
        "services are created with their mooring:uid tag; ECS's service-linked role is created on first use; \
         a staged rollout passes its load balancer role (loadBalancer.roleArn) to ECS",
    ),
    entry(
        "ecs:UpdateService",
        CONTROLLER,
        &[owned(&["ecs:UpdateService"], ECS_SERVICES), PASS_WORKLOAD_ROLES],
        "only Mooring's services (and the load balancer role of a staged rollout, among those the install allows)",
    ),
    entry(
        "ecs:DescribeServiceDeployments",
        CONTROLLER,
        &[read(&["ecs:DescribeServiceDeployments"], ECS_SERVICE_DEPLOYMENTS)],
        "follow a staged rollout (blue/green, canary, linear)",
    ),
    entry(
        "ecs:ContinueServiceDeployment",
        CONTROLLER,
        &[grant(&["ecs:ContinueServiceDeployment"], Resources::Arns(ECS_SERVICE_DEPLOYMENTS), Condition::None)],
        "answer the PAUSE hooks of a rollout's gates; only deployments of services Mooring records (deployments carry no tags)",
    ),
    entry(
        "ecs:StopServiceDeployment",
        CONTROLLER,
        &[grant(&["ecs:StopServiceDeployment"], Resources::Arns(ECS_SERVICE_DEPLOYMENTS), Condition::None)],
        "roll a rollout back (an alarm fired, `mooring rollout abort`); only deployments of services Mooring records",
    ),
    entry("ecs:DeleteService", CONTROLLER, &[owned(&["ecs:DeleteService"], ECS_SERVICES)], "only Mooring's services"),
    entry(
        "ecs:TagResource",
        CONTROLLER,
        &[
            owned(&["ecs:TagResource"], ECS_TAGGABLE),
            grant(&["ecs:TagResource"], Resources::Arns(ECS_TAGGABLE), Condition::Adopt),
        ],
        "retag Mooring's services; adoption tags an untagged one with mooring:uid",
    ),
    entry(
        "ecs:UntagResource",
        CONTROLLER,
        &[owned(&["ecs:UntagResource"], ECS_TAGGABLE)],
        "deletionPolicy Retain removes Mooring's tags; a key removed from spec.tags goes too",
    ),
    entry(
        "ecs:RegisterTaskDefinition",
        CONTROLLER,
        &[
            creates_tagged(&["ecs:RegisterTaskDefinition"], ECS_TASK_DEFINITIONS),
            grant(
                &["ecs:TagResource"],
                Resources::Arns(ECS_TAGGABLE),
                Condition::TagOnCreate {
                    key: "ecs:CreateAction",
                    actions: &["CreateService", "RegisterTaskDefinition"],
                },
            ),
            PASS_WORKLOAD_ROLES,
        ],
        "task definitions carry mooring:uid; their task and execution roles must be ones the install allows",
    ),
    entry(
        "ecs:DeregisterTaskDefinition",
        CONTROLLER,
        &[any(&["ecs:DeregisterTaskDefinition"])],
        "no resource-level permission exists for this action",
    ),
    entry(
        "ecs:DescribeTaskDefinition",
        CONTROLLER,
        &[any(&["ecs:DescribeTaskDefinition"])],
        "no resource-level permission exists for this action",
    ),
    entry(
        "ecs:ListTaskDefinitions",
        CONTROLLER,
        &[any(&["ecs:ListTaskDefinitions"])],
        "no resource-level permission exists for this action",
    ),
    entry(
        "ecs:ListTasks",
        CONTROLLER,
        &[any(&["ecs:ListTasks"])],
        "scoped by container instance, which Fargate tasks have none of: a service's tasks, to count the protected ones",
    ),
    entry(
        "ecs:GetTaskProtection",
        CONTROLLER,
        &[read(&["ecs:GetTaskProtection"], ECS_TASKS)],
        "which tasks kept beyond the desired count are protected from scale-in",
    ),
    // SQS
    entry("sqs:GetQueueUrl", CONTROLLER, &[read(&["sqs:GetQueueUrl"], QUEUES)], "find a queue by name"),
    entry(
        "sqs:CreateQueue",
        CONTROLLER,
        &[creates_tagged(&["sqs:CreateQueue", "sqs:TagQueue"], QUEUES)],
        "queues are created with their mooring:uid tag (tagging on create needs sqs:TagQueue)",
    ),
    entry("sqs:GetQueueAttributes", CONTROLLER, &[read(&["sqs:GetQueueAttributes"], QUEUES)], "observe queues"),
    entry("sqs:SetQueueAttributes", CONTROLLER, &[owned(&["sqs:SetQueueAttributes"], QUEUES)], "only Mooring's queues"),
    entry("sqs:ListQueueTags", CONTROLLER, &[read(&["sqs:ListQueueTags"], QUEUES)], "ownership is read from tags"),
    entry(
        "sqs:UntagQueue",
        CONTROLLER,
        &[owned(&["sqs:UntagQueue"], QUEUES)],
        "deletionPolicy Retain removes Mooring's tags; a key removed from spec.tags goes too",
    ),
    entry(
        "sqs:TagQueue",
        CONTROLLER,
        &[owned(&["sqs:TagQueue"], QUEUES), grant(&["sqs:TagQueue"], Resources::Arns(QUEUES), Condition::Adopt)],
        "spec.tags on Mooring's queues; adoption tags an untagged one with mooring:uid",
    ),
    entry("sqs:DeleteQueue", CONTROLLER, &[owned(&["sqs:DeleteQueue"], QUEUES)], "only Mooring's queues"),
    entry(
        "sqs:ReceiveMessage",
        CONTROLLER,
        &[grant(&["sqs:ReceiveMessage"], Resources::Install(InstallRef::EventsQueue), Condition::None)],
        "the AWS-event queue of the install",
    ),
    entry(
        "sqs:DeleteMessageBatch",
        CONTROLLER,
        // IAM knows batch deletes as sqs:DeleteMessage.
        &[grant(&["sqs:DeleteMessage"], Resources::Install(InstallRef::EventsQueue), Condition::None)],
        "the AWS-event queue of the install",
    ),
    // ElastiCache
    entry(
        "cloudwatch:GetMetricData",
        CONTROLLER,
        &[any(&["cloudwatch:GetMetricData"])],
        "service CPU for the autoscaler (GetMetricData has no resource-level permissions)",
    ),
    entry(
        "cloudwatch:DescribeAlarms",
        CONTROLLER,
        // `*`, as aws-native scaling grants it already (one statement fewer).
        &[any(&["cloudwatch:DescribeAlarms"])],
        "the alarms a rollout's verify.alarms names, watched during the traffic shift and bake",
    ),
    entry(
        "cloudwatch:PutMetricAlarm",
        CONTROLLER,
        // Tags given to PutMetricAlarm need TagResource as well.
        // Held by name (the names carry the node's uid; the tag is checked
        // before an existing alarm is changed), which keeps the task policy
        // within IAM's inline size limit.
        &[read(&["cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"], MOORING_ALARMS)],
        "a node's alarms (spec.alarms), named mooring-node-UID-*, tagged with mooring:uid when created",
    ),
    entry(
        "cloudwatch:DeleteAlarms",
        CONTROLLER,
        &[read(&["cloudwatch:DeleteAlarms"], MOORING_ALARMS)],
        "a node's alarms, deleted with the node or when spec.alarms drops them",
    ),
    entry(
        "cloudwatch:ListTagsForResource",
        CONTROLLER,
        &[read(&["cloudwatch:ListTagsForResource"], MOORING_ALARMS)],
        "the ownership check before a node's alarm is changed or deleted",
    ),
    entry(
        "logs:FilterLogEvents",
        CONTROLLER,
        &[read(&["logs:FilterLogEvents"], WORKLOAD_LOG_GROUPS)],
        "`mooring logs`: the log groups of relays and workers (/mooring/NAMESPACE/NAME)",
    ),
    entry(
        "application-autoscaling:DescribeScalableTargets",
        CONTROLLER,
        &[any(&["application-autoscaling:DescribeScalableTargets"])],
        "no resource-level permission exists for this action",
    ),
    entry(
        "application-autoscaling:DescribeScalingPolicies",
        CONTROLLER,
        &[any(&["application-autoscaling:DescribeScalingPolicies"])],
        "no resource-level permission exists for this action",
    ),
    entry(
        "application-autoscaling:RegisterScalableTarget",
        CONTROLLER,
        &[
            creates_tagged(
                &["application-autoscaling:RegisterScalableTarget", "application-autoscaling:TagResource"],
                SCALABLE_TARGETS,
            ),
            owned(&["application-autoscaling:RegisterScalableTarget"], SCALABLE_TARGETS),
            grant(
                &["iam:CreateServiceLinkedRole"],
                Resources::Arns(APP_AUTOSCALING_SERVICE_LINKED_ROLE),
                Condition::ServiceLinkedRole("ecs.application-autoscaling.amazonaws.com"),
            ),
        ],
        "targets are registered with their mooring:uid tag (and their bounds updated only on Mooring's); the service-linked role is created on first use",
    ),
    entry(
        "application-autoscaling:DeregisterScalableTarget",
        CONTROLLER,
        &[owned(&["application-autoscaling:DeregisterScalableTarget"], SCALABLE_TARGETS)],
        "only Mooring's targets",
    ),
    entry(
        "application-autoscaling:PutScalingPolicy",
        CONTROLLER,
        &[
            owned(&["application-autoscaling:PutScalingPolicy"], SCALABLE_TARGETS),
            read(&["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"], MOORING_ALARMS),
            any(&["cloudwatch:DescribeAlarms"]),
        ],
        "policies on Mooring's targets only; target tracking creates its alarms as the caller",
    ),
    entry(
        "application-autoscaling:DeleteScalingPolicy",
        CONTROLLER,
        &[
            owned(&["application-autoscaling:DeleteScalingPolicy"], SCALABLE_TARGETS),
            read(&["cloudwatch:DeleteAlarms"], MOORING_ALARMS),
        ],
        "policies on Mooring's targets only, with the alarms target tracking made",
    ),
    entry(
        "elasticache:DescribeReplicationGroups",
        CONTROLLER,
        &[read(&["elasticache:DescribeReplicationGroups"], REPLICATION_GROUPS)],
        "observe caches",
    ),
    entry(
        "elasticache:CreateReplicationGroup",
        CONTROLLER,
        &[
            creates_tagged(&["elasticache:CreateReplicationGroup"], CACHE_CREATE),
            creates_tagged(&["elasticache:AddTagsToResource"], CACHE_TAGGABLE),
            any(&["ec2:DescribeSubnets", "ec2:DescribeVpcs", "ec2:DescribeNetworkInterfaces"]),
            grant(
                &["iam:CreateServiceLinkedRole"],
                Resources::Arns(ELASTICACHE_SERVICE_LINKED_ROLE),
                Condition::ServiceLinkedRole("elasticache.amazonaws.com"),
            ),
        ],
        "caches are created with their mooring:uid tag; ElastiCache's service-linked role makes the network interfaces",
    ),
    entry(
        "elasticache:DeleteReplicationGroup",
        CONTROLLER,
        &[owned(&["elasticache:DeleteReplicationGroup"], REPLICATION_GROUPS)],
        "only Mooring's caches",
    ),
    entry(
        "elasticache:RemoveTagsFromResource",
        CONTROLLER,
        &[owned(&["elasticache:RemoveTagsFromResource"], CACHE_TAGGABLE)],
        "deletionPolicy Retain removes Mooring's tags; a key removed from spec.tags goes too",
    ),
    entry(
        "elasticache:AddTagsToResource",
        CONTROLLER,
        &[
            owned(&["elasticache:AddTagsToResource"], CACHE_TAGGABLE),
            grant(&["elasticache:AddTagsToResource"], Resources::Arns(CACHE_TAGGABLE), Condition::Adopt),
        ],
        "spec.tags on Mooring's caches; adoption tags an untagged one with mooring:uid",
    ),
    entry(
        "elasticache:ListTagsForResource",
        CONTROLLER,
        &[read(&["elasticache:ListTagsForResource"], CACHE_TAGGABLE)],
        "whose a replication group found by id is (ours, untagged, or another resource's)",
    ),
    entry(
        "elasticache:ModifyReplicationGroup",
        CONTROLLER,
        &[owned(&["elasticache:ModifyReplicationGroup"], REPLICATION_GROUPS)],
        "cache.nodeType and cache.engineVersion changes, on Mooring's caches only",
    ),
    entry(
        "elasticache:IncreaseReplicaCount",
        CONTROLLER,
        &[
            owned(&["elasticache:IncreaseReplicaCount"], REPLICATION_GROUPS),
            // The new replicas are cache clusters of the group; they carry no tag yet.
            read(&["elasticache:IncreaseReplicaCount"], CACHE_CLUSTERS),
        ],
        "cache.replicas going up, on Mooring's caches only",
    ),
    entry(
        "elasticache:DecreaseReplicaCount",
        CONTROLLER,
        &[
            owned(&["elasticache:DecreaseReplicaCount"], REPLICATION_GROUPS),
            owned(&["elasticache:DecreaseReplicaCount"], CACHE_CLUSTERS),
        ],
        "cache.replicas going down, on Mooring's caches only",
    ),
    // EC2: the controller observes, the provisioner (in CodeBuild) acts.
    entry(
        "ec2:DescribeInstances",
        BOTH,
        &[any(&["ec2:DescribeInstances"])],
        "EC2 describes have no resource-level permission",
    ),
    entry(
        "ec2:RunInstances",
        PROVISIONER,
        &[
            creates_tagged(&["ec2:RunInstances"], INSTANCES_AND_VOLUMES),
            read(&["ec2:RunInstances"], RUN_INSTANCES_INPUTS),
            grant(
                &["ec2:CreateTags"],
                Resources::Arns(INSTANCES_AND_VOLUMES),
                Condition::TagOnCreate { key: "ec2:CreateAction", actions: &["RunInstances", "CreateVolume"] },
            ),
            // A node's `instanceProfile`: its role must be one the install allows.
            grant(
                &["iam:PassRole"],
                Resources::Install(InstallRef::PassRoles),
                Condition::PassedTo(&["ec2.amazonaws.com"]),
            ),
        ],
        "instances and their volumes are launched with their mooring:uid tag, as an instance profile whose role the install allows",
    ),
    entry("ec2:StopInstances", PROVISIONER, &[owned(&["ec2:StopInstances"], INSTANCES)], "only Mooring's instances"),
    entry("ec2:StartInstances", PROVISIONER, &[owned(&["ec2:StartInstances"], INSTANCES)], "only Mooring's instances"),
    entry(
        "ec2:TerminateInstances",
        PROVISIONER,
        &[owned(&["ec2:TerminateInstances"], INSTANCES)],
        "only Mooring's instances",
    ),
    entry(
        "ec2:ModifyInstanceAttribute",
        PROVISIONER,
        &[owned(&["ec2:ModifyInstanceAttribute"], INSTANCES)],
        "InPlace updates of Mooring's instances",
    ),
    entry(
        "ec2:DescribeInstanceStatus",
        BOTH,
        &[any(&["ec2:DescribeInstanceStatus"])],
        "EC2 describes have no resource-level permission",
    ),
    entry("ec2:DescribeSubnets", PROVISIONER, &[any(&["ec2:DescribeSubnets"])], "the data volume's availability zone"),
    entry(
        "ec2:DescribeVolumes",
        PROVISIONER,
        &[any(&["ec2:DescribeVolumes"])],
        "EC2 describes have no resource-level permission",
    ),
    entry(
        "ec2:CreateVolume",
        PROVISIONER,
        &[
            creates_tagged(&["ec2:CreateVolume"], VOLUMES),
            grant(
                &["ec2:CreateTags"],
                Resources::Arns(INSTANCES_AND_VOLUMES),
                Condition::TagOnCreate { key: "ec2:CreateAction", actions: &["RunInstances", "CreateVolume"] },
            ),
            // A restore: the volume starts from a snapshot (the node's own,
            // or the `fromSnapshot` its spec names).
            read(&["ec2:CreateVolume"], SNAPSHOTS),
        ],
        "data volumes are created with their mooring:uid tag, from a snapshot when restoring",
    ),
    entry(
        "ec2:AttachVolume",
        PROVISIONER,
        &[owned(&["ec2:AttachVolume"], INSTANCES_AND_VOLUMES)],
        "a Mooring volume to a Mooring instance",
    ),
    entry(
        "ec2:DetachVolume",
        PROVISIONER,
        &[owned(&["ec2:DetachVolume"], INSTANCES_AND_VOLUMES)],
        "a Mooring volume from a Mooring instance",
    ),
    entry("ec2:DeleteVolume", PROVISIONER, &[owned(&["ec2:DeleteVolume"], VOLUMES)], "only Mooring's volumes"),
    entry(
        "ec2:CreateTags",
        PROVISIONER,
        &[
            owned(&["ec2:CreateTags"], INSTANCES_AND_VOLUMES),
            grant(&["ec2:CreateTags"], Resources::Arns(INSTANCES_AND_VOLUMES), Condition::Adopt),
        ],
        "retag Mooring's instances and volumes; adoption tags an untagged one with mooring:uid",
    ),
    entry(
        "ec2:DeleteTags",
        PROVISIONER,
        &[grant(&["ec2:DeleteTags"], Resources::Arns(INSTANCES_AND_VOLUMES), Condition::OwnedMooringKeys)],
        "a kept volume loses Mooring's tags, and only those",
    ),
    // EBS snapshots: the controller backs data volumes up itself (no build
    // per snapshot).
    entry(
        "ec2:DescribeSnapshots",
        CONTROLLER,
        &[any(&["ec2:DescribeSnapshots"])],
        "EC2 describes have no resource-level permission",
    ),
    entry(
        "ec2:CreateSnapshot",
        CONTROLLER,
        &[
            owned(&["ec2:CreateSnapshot"], VOLUMES),
            creates_tagged(&["ec2:CreateSnapshot"], SNAPSHOTS),
            grant(
                &["ec2:CreateTags"],
                Resources::Arns(SNAPSHOTS),
                Condition::TagOnCreate { key: "ec2:CreateAction", actions: &["CreateSnapshot"] },
            ),
        ],
        "snapshots of Mooring's volumes only, tagged with mooring:uid at birth",
    ),
    entry("ec2:DeleteSnapshot", CONTROLLER, &[owned(&["ec2:DeleteSnapshot"], SNAPSHOTS)], "only Mooring's snapshots"),
    // CodeBuild
    entry(
        "codebuild:BatchGetProjects",
        CONTROLLER,
        &[read(&["codebuild:BatchGetProjects"], PROVISIONER_PROJECTS)],
        "the provisioner projects",
    ),
    entry(
        "codebuild:CreateProject",
        CONTROLLER,
        &[
            read(&["codebuild:CreateProject"], PROVISIONER_PROJECTS),
            grant(
                &["iam:PassRole"],
                Resources::Install(InstallRef::ProvisionerRole),
                Condition::PassedTo(&["codebuild.amazonaws.com"]),
            ),
        ],
        "a provisioner project runs as the install's provisioner role, and no other",
    ),
    entry(
        "codebuild:UpdateProject",
        CONTROLLER,
        &[
            read(&["codebuild:UpdateProject"], PROVISIONER_PROJECTS),
            grant(
                &["iam:PassRole"],
                Resources::Install(InstallRef::ProvisionerRole),
                Condition::PassedTo(&["codebuild.amazonaws.com"]),
            ),
        ],
        "a provisioner project runs as the install's provisioner role, and no other",
    ),
    entry("codebuild:StartBuild", CONTROLLER, &[read(&["codebuild:StartBuild"], PROVISIONER_PROJECTS)], "node builds"),
    entry(
        "codebuild:BatchGetBuilds",
        CONTROLLER,
        &[read(&["codebuild:BatchGetBuilds"], PROVISIONER_PROJECTS)],
        "follow node builds",
    ),
    // ELBv2
    entry(
        "elasticloadbalancing:RegisterTargets",
        PROVISIONER,
        &[read(&["elasticloadbalancing:RegisterTargets"], TARGET_GROUPS)],
        "the target group a node spec names",
    ),
    entry(
        "elasticloadbalancing:DeregisterTargets",
        PROVISIONER,
        &[read(&["elasticloadbalancing:DeregisterTargets"], TARGET_GROUPS)],
        "the target group a node spec names",
    ),
    entry(
        "elasticloadbalancing:DescribeTargetHealth",
        CONTROLLER,
        &[any(&["elasticloadbalancing:DescribeTargetHealth"])],
        "no resource-level permission exists for this action",
    ),
    entry(
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        CONTROLLER,
        &[any(&["elasticloadbalancing:DescribeTargetGroupAttributes"])],
        "a relay's drain check reads the deregistration delay (no resource-level permission exists)",
    ),
    // Route53
    entry(
        "route53:ListResourceRecordSets",
        CONTROLLER,
        &[read(&["route53:ListResourceRecordSets"], HOSTED_ZONES)],
        "a node set's discovery zone: its records are read to find the set's own (marked by a _mooring TXT record)",
    ),
    entry(
        "route53:ChangeResourceRecordSets",
        CONTROLLER,
        &[read(&["route53:ChangeResourceRecordSets"], HOSTED_ZONES)],
        "a node set's member records; record sets carry no tags, so the _mooring marker record is the ownership check",
    ),
];

/// Calls the process makes outside the facades (at start-up), not in the
/// operation table because no reconcile makes them.
pub const PROCESS_CALLS: &[Scoping] = &[
    entry(
        "secretsmanager:GetSecretValue",
        CONTROLLER,
        &[grant(&["secretsmanager:GetSecretValue"], Resources::Install(InstallRef::SigningKey), Condition::None)],
        "the revision-signing key, and no other secret",
    ),
    entry("sts:GetCallerIdentity", CONTROLLER, &[], "needs no permission: every principal may ask who it is"),
];
