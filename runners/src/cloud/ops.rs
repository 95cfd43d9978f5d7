//! Every AWS operation Mooring makes, with the API family whose budget it draws
//! from and whether it changes anything. One table, so metrics, budgets and the
//! "no mutating call on a no-op reconcile" check agree.

use crate::gate::ApiFamily;

/// One AWS operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Op {
    /// `service:Operation`, as in IAM policies (`ecs:DescribeServices`).
    pub name: &'static str,
    pub family: ApiFamily,
    /// Changes state in AWS (used by metrics and tests).
    pub mutating: bool,
}

const fn read(name: &'static str, family: ApiFamily) -> Op {
    Op { name, family, mutating: false }
}
const fn write(name: &'static str, family: ApiFamily) -> Op {
    Op { name, family, mutating: true }
}

use ApiFamily::*;

pub const DESCRIBE_SERVICES: Op = read("ecs:DescribeServices", EcsRead);
pub const CREATE_SERVICE: Op = write("ecs:CreateService", EcsServiceWrite);
pub const UPDATE_SERVICE: Op = write("ecs:UpdateService", EcsServiceWrite);
pub const DELETE_SERVICE: Op = write("ecs:DeleteService", EcsServiceWrite);
pub const TAG_RESOURCE: Op = write("ecs:TagResource", EcsServiceWrite);
pub const UNTAG_RESOURCE: Op = write("ecs:UntagResource", EcsServiceWrite);
pub const REGISTER_TASK_DEFINITION: Op = write("ecs:RegisterTaskDefinition", EcsRegisterTaskDefinition);
pub const DEREGISTER_TASK_DEFINITION: Op = write("ecs:DeregisterTaskDefinition", EcsRegisterTaskDefinition);
pub const DESCRIBE_TASK_DEFINITION: Op = read("ecs:DescribeTaskDefinition", EcsRead);
pub const LIST_TASK_DEFINITIONS: Op = read("ecs:ListTaskDefinitions", EcsRead);
pub const LIST_TASKS: Op = read("ecs:ListTasks", EcsRead);
pub const GET_TASK_PROTECTION: Op = read("ecs:GetTaskProtection", EcsRead);
pub const DESCRIBE_SERVICE_DEPLOYMENTS: Op = read("ecs:DescribeServiceDeployments", EcsRead);
pub const CONTINUE_SERVICE_DEPLOYMENT: Op = write("ecs:ContinueServiceDeployment", EcsServiceWrite);
pub const STOP_SERVICE_DEPLOYMENT: Op = write("ecs:StopServiceDeployment", EcsServiceWrite);

pub const GET_QUEUE_URL: Op = read("sqs:GetQueueUrl", Sqs);
pub const CREATE_QUEUE: Op = write("sqs:CreateQueue", Sqs);
pub const GET_QUEUE_ATTRIBUTES: Op = read("sqs:GetQueueAttributes", Sqs);
pub const SET_QUEUE_ATTRIBUTES: Op = write("sqs:SetQueueAttributes", Sqs);
pub const LIST_QUEUE_TAGS: Op = read("sqs:ListQueueTags", Sqs);
pub const UNTAG_QUEUE: Op = write("sqs:UntagQueue", Sqs);
pub const TAG_QUEUE: Op = write("sqs:TagQueue", Sqs);
pub const DELETE_QUEUE: Op = write("sqs:DeleteQueue", Sqs);
pub const RECEIVE_MESSAGE: Op = read("sqs:ReceiveMessage", Sqs);
pub const DELETE_MESSAGE_BATCH: Op = write("sqs:DeleteMessageBatch", Sqs);

pub const DESCRIBE_REPLICATION_GROUPS: Op = read("elasticache:DescribeReplicationGroups", ElastiCache);
pub const CREATE_REPLICATION_GROUP: Op = write("elasticache:CreateReplicationGroup", ElastiCache);
pub const DELETE_REPLICATION_GROUP: Op = write("elasticache:DeleteReplicationGroup", ElastiCache);
pub const REMOVE_TAGS_FROM_RESOURCE: Op = write("elasticache:RemoveTagsFromResource", ElastiCache);
pub const ADD_TAGS_TO_RESOURCE: Op = write("elasticache:AddTagsToResource", ElastiCache);
pub const LIST_TAGS_FOR_RESOURCE: Op = read("elasticache:ListTagsForResource", ElastiCache);
pub const MODIFY_REPLICATION_GROUP: Op = write("elasticache:ModifyReplicationGroup", ElastiCache);
pub const INCREASE_REPLICA_COUNT: Op = write("elasticache:IncreaseReplicaCount", ElastiCache);
pub const DECREASE_REPLICA_COUNT: Op = write("elasticache:DecreaseReplicaCount", ElastiCache);

pub const GET_METRIC_DATA: Op = read("cloudwatch:GetMetricData", CloudWatch);
pub const DESCRIBE_ALARMS: Op = read("cloudwatch:DescribeAlarms", CloudWatch);
pub const PUT_METRIC_ALARM: Op = write("cloudwatch:PutMetricAlarm", CloudWatch);
pub const DELETE_ALARMS: Op = write("cloudwatch:DeleteAlarms", CloudWatch);
pub const LIST_ALARM_TAGS: Op = read("cloudwatch:ListTagsForResource", CloudWatch);
pub const FILTER_LOG_EVENTS: Op = read("logs:FilterLogEvents", CloudWatchLogs);

pub const DESCRIBE_SCALABLE_TARGETS: Op = read("application-autoscaling:DescribeScalableTargets", AutoScaling);
pub const REGISTER_SCALABLE_TARGET: Op = write("application-autoscaling:RegisterScalableTarget", AutoScaling);
pub const DEREGISTER_SCALABLE_TARGET: Op = write("application-autoscaling:DeregisterScalableTarget", AutoScaling);
pub const DESCRIBE_SCALING_POLICIES: Op = read("application-autoscaling:DescribeScalingPolicies", AutoScaling);
pub const PUT_SCALING_POLICY: Op = write("application-autoscaling:PutScalingPolicy", AutoScaling);
pub const DELETE_SCALING_POLICY: Op = write("application-autoscaling:DeleteScalingPolicy", AutoScaling);

pub const DESCRIBE_INSTANCES: Op = read("ec2:DescribeInstances", Ec2Describe);
pub const RUN_INSTANCES: Op = write("ec2:RunInstances", Ec2RunInstances);
pub const STOP_INSTANCES: Op = write("ec2:StopInstances", Ec2Mutate);
pub const START_INSTANCES: Op = write("ec2:StartInstances", Ec2Mutate);
pub const TERMINATE_INSTANCES: Op = write("ec2:TerminateInstances", Ec2TerminateInstances);
pub const MODIFY_INSTANCE_ATTRIBUTE: Op = write("ec2:ModifyInstanceAttribute", Ec2Mutate);
pub const DESCRIBE_INSTANCE_STATUS: Op = read("ec2:DescribeInstanceStatus", Ec2Describe);
pub const DESCRIBE_SUBNETS: Op = read("ec2:DescribeSubnets", Ec2Describe);
pub const DESCRIBE_VOLUMES: Op = read("ec2:DescribeVolumes", Ec2Describe);
pub const CREATE_VOLUME: Op = write("ec2:CreateVolume", Ec2Mutate);
pub const ATTACH_VOLUME: Op = write("ec2:AttachVolume", Ec2Mutate);
pub const DETACH_VOLUME: Op = write("ec2:DetachVolume", Ec2Mutate);
pub const DELETE_VOLUME: Op = write("ec2:DeleteVolume", Ec2Mutate);
pub const CREATE_TAGS: Op = write("ec2:CreateTags", Ec2Mutate);
pub const DELETE_TAGS: Op = write("ec2:DeleteTags", Ec2Mutate);
pub const DESCRIBE_SNAPSHOTS: Op = read("ec2:DescribeSnapshots", Ec2Describe);
pub const CREATE_SNAPSHOT: Op = write("ec2:CreateSnapshot", Ec2Mutate);
pub const DELETE_SNAPSHOT: Op = write("ec2:DeleteSnapshot", Ec2Mutate);

pub const BATCH_GET_PROJECTS: Op = read("codebuild:BatchGetProjects", CodeBuild);
pub const CREATE_PROJECT: Op = write("codebuild:CreateProject", CodeBuild);
pub const UPDATE_PROJECT: Op = write("codebuild:UpdateProject", CodeBuild);
pub const START_BUILD: Op = write("codebuild:StartBuild", CodeBuild);
pub const BATCH_GET_BUILDS: Op = read("codebuild:BatchGetBuilds", CodeBuild);

pub const LIST_RESOURCE_RECORD_SETS: Op = read("route53:ListResourceRecordSets", Route53);
pub const CHANGE_RESOURCE_RECORD_SETS: Op = write("route53:ChangeResourceRecordSets", Route53);

pub const REGISTER_TARGETS: Op = write("elasticloadbalancing:RegisterTargets", ElasticLoadBalancing);
pub const DEREGISTER_TARGETS: Op = write("elasticloadbalancing:DeregisterTargets", ElasticLoadBalancing);
pub const DESCRIBE_TARGET_HEALTH: Op = read("elasticloadbalancing:DescribeTargetHealth", ElasticLoadBalancing);
pub const DESCRIBE_TARGET_GROUP_ATTRIBUTES: Op =
    read("elasticloadbalancing:DescribeTargetGroupAttributes", ElasticLoadBalancing);

/// Every operation above (metrics pre-registration, docs).
pub const ALL: &[Op] = &[
    DESCRIBE_SERVICES,
    CREATE_SERVICE,
    UPDATE_SERVICE,
    DELETE_SERVICE,
    TAG_RESOURCE,
    UNTAG_RESOURCE,
    REGISTER_TASK_DEFINITION,
    DEREGISTER_TASK_DEFINITION,
    DESCRIBE_TASK_DEFINITION,
    LIST_TASK_DEFINITIONS,
    LIST_TASKS,
    GET_TASK_PROTECTION,
    DESCRIBE_SERVICE_DEPLOYMENTS,
    CONTINUE_SERVICE_DEPLOYMENT,
    STOP_SERVICE_DEPLOYMENT,
    GET_QUEUE_URL,
    CREATE_QUEUE,
    GET_QUEUE_ATTRIBUTES,
    SET_QUEUE_ATTRIBUTES,
    LIST_QUEUE_TAGS,
    UNTAG_QUEUE,
    TAG_QUEUE,
    DELETE_QUEUE,
    RECEIVE_MESSAGE,
    DELETE_MESSAGE_BATCH,
    DESCRIBE_REPLICATION_GROUPS,
    CREATE_REPLICATION_GROUP,
    DELETE_REPLICATION_GROUP,
    REMOVE_TAGS_FROM_RESOURCE,
    ADD_TAGS_TO_RESOURCE,
    LIST_TAGS_FOR_RESOURCE,
    MODIFY_REPLICATION_GROUP,
    INCREASE_REPLICA_COUNT,
    DECREASE_REPLICA_COUNT,
    GET_METRIC_DATA,
    DESCRIBE_ALARMS,
    PUT_METRIC_ALARM,
    DELETE_ALARMS,
    LIST_ALARM_TAGS,
    FILTER_LOG_EVENTS,
    DESCRIBE_SCALABLE_TARGETS,
    REGISTER_SCALABLE_TARGET,
    DEREGISTER_SCALABLE_TARGET,
    DESCRIBE_SCALING_POLICIES,
    PUT_SCALING_POLICY,
    DELETE_SCALING_POLICY,
    DESCRIBE_INSTANCES,
    RUN_INSTANCES,
    STOP_INSTANCES,
    START_INSTANCES,
    TERMINATE_INSTANCES,
    MODIFY_INSTANCE_ATTRIBUTE,
    DESCRIBE_INSTANCE_STATUS,
    DESCRIBE_SUBNETS,
    DESCRIBE_VOLUMES,
    CREATE_VOLUME,
    ATTACH_VOLUME,
    DETACH_VOLUME,
    DELETE_VOLUME,
    CREATE_TAGS,
    DELETE_TAGS,
    DESCRIBE_SNAPSHOTS,
    CREATE_SNAPSHOT,
    DELETE_SNAPSHOT,
    BATCH_GET_PROJECTS,
    CREATE_PROJECT,
    UPDATE_PROJECT,
    START_BUILD,
    BATCH_GET_BUILDS,
    LIST_RESOURCE_RECORD_SETS,
    CHANGE_RESOURCE_RECORD_SETS,
    REGISTER_TARGETS,
    DEREGISTER_TARGETS,
    DESCRIBE_TARGET_HEALTH,
    DESCRIBE_TARGET_GROUP_ATTRIBUTES,
];

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_prefixed() {
        let mut names: Vec<_> = super::ALL.iter().map(|o| o.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), super::ALL.len());
        assert!(super::ALL.iter().all(|o| o.name.contains(':')));
    }
}
