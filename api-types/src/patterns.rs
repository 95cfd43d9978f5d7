//! The string shapes the schemas enforce, each with the sentence a user reads when a
//! value does not match. One table, so the schema and the error message never drift.

/// A DNS-1123 label (names and namespaces).
pub const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// An EC2 AMI id.
pub const AMI_ID: &str = r"^ami-[0-9a-f]{8,17}$";
/// An EC2 subnet id.
pub const SUBNET_ID: &str = r"^subnet-[0-9a-f]{8,17}$";
/// An EC2 security group id.
pub const SECURITY_GROUP_ID: &str = r"^sg-[0-9a-f]{8,17}$";
/// An EC2 instance type such as `t3.micro` or `m7g.2xlarge`.
pub const INSTANCE_TYPE: &str = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$";
/// Any ARN.
pub const ARN: &str = r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12})?:.+$";
/// An IAM role ARN.
pub const ROLE_ARN: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$";
/// A Secrets Manager secret or SSM parameter ARN (what ECS accepts as `valueFrom`).
pub const SECRET_ARN: &str =
    r"^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:|ssm:[a-z0-9-]+:[0-9]{12}:parameter/).+$";
/// An ELBv2 target group ARN.
pub const TARGET_GROUP_ARN: &str =
    r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]+$";
/// An ECS cluster name or ARN.
pub const CLUSTER: &str =
    r"^([A-Za-z0-9_-]{1,255}|arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]{1,255})$";
/// An environment variable name.
pub const ENV_NAME: &str = r"^[A-Za-z_][A-Za-z0-9_]*$";
/// A container name in an ECS task definition.
pub const CONTAINER_NAME: &str = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$";
/// An SQS queue name (without the `.fifo` suffix rule, checked separately).
pub const QUEUE_NAME: &str = r"^[A-Za-z0-9_-]{1,75}(\.fifo)?$";
/// A node artifact: an S3 URL or a container image reference.
pub const ARTIFACT: &str = r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+|[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?)$";
/// A container image reference (registry/repository[:tag][@digest]).
pub const IMAGE: &str = r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$";
/// An HTTP path for health checks.
pub const HTTP_PATH: &str = r"^/[^\s]*$";
/// An ElastiCache node type.
pub const CACHE_NODE_TYPE: &str = r"^cache\.[a-z0-9]+\.[a-z0-9]+$";
/// An ELBv2 listener rule ARN.
pub const LISTENER_RULE_ARN: &str = r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener-rule/(app|net)/[A-Za-z0-9-]{1,32}/[0-9a-f]+/[0-9a-f]+/[0-9a-f]+$";
/// An http(s) URL with a host (and optional port and path).
pub const HTTP_URL: &str = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*)?$";
/// An IAM instance profile name or ARN.
pub const INSTANCE_PROFILE: &str = r"^(arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/)?[A-Za-z0-9+=,.@_-]{1,128}$";
/// A Route53 hosted zone id (`Z0123456789ABCDEFGHIJ`).
pub const HOSTED_ZONE_ID: &str = r"^[A-Z0-9]{1,32}$";
/// A DNS name of lower-case labels, without the trailing dot (`pulse.internal`).
pub const DNS_NAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// What each pattern means, in the words of an error message.
const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        DNS_LABEL,
        "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit",
    ),
    (AMI_ID, "must be an AMI id such as ami-0abcdef1234567890"),
    (SUBNET_ID, "must be a subnet id such as subnet-0abcdef1234567890"),
    (SECURITY_GROUP_ID, "must be a security group id such as sg-0abcdef1234567890"),
    (INSTANCE_TYPE, "must be an EC2 instance type such as t3.micro"),
    (ARN, "must be an ARN (arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE)"),
    (ROLE_ARN, "must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
    (SECRET_ARN, "must be a Secrets Manager secret ARN or an SSM parameter ARN"),
    (
        TARGET_GROUP_ARN,
        "must be an ELBv2 target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)",
    ),
    (CLUSTER, "must be an ECS cluster name or cluster ARN"),
    (ENV_NAME, "must be an environment variable name (letters, digits and '_', not starting with a digit)"),
    (CONTAINER_NAME, "must be a container name (letters, digits, '-' and '_', up to 255 characters)"),
    (
        QUEUE_NAME,
        "must be an SQS queue name (letters, digits, '-' and '_', up to 80 characters, FIFO queues ending in .fifo)",
    ),
    (ARTIFACT, "must be an S3 URL (s3://bucket/key) or a container image reference"),
    (IMAGE, "must be a container image reference such as public.ecr.aws/org/app:1.2.3"),
    (HTTP_PATH, "must be an absolute HTTP path such as /health"),
    (CACHE_NODE_TYPE, "must be an ElastiCache node type such as cache.t4g.micro"),
    (
        LISTENER_RULE_ARN,
        "must be an ELBv2 listener rule ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener-rule/app/LB/ID/ID/ID)",
    ),
    (HTTP_URL, "must be an http:// or https:// URL such as http://internal-gw.example:8443"),
    (HOSTED_ZONE_ID, "must be a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ"),
    (INSTANCE_PROFILE, "must be an IAM instance profile name or ARN (arn:aws:iam::ACCOUNT:instance-profile/NAME)"),
    (
        DNS_NAME,
        "must be a DNS name of lower-case labels (letters, digits and '-') without a trailing dot, such as pulse.internal",
    ),
];

/// The human sentence for a pattern, if it is one of ours.
pub fn describe(pattern: &str) -> Option<&'static str> {
    DESCRIPTIONS.iter().find(|(p, _)| *p == pattern).map(|(_, d)| *d)
}

/// An EBS snapshot id.
pub const SNAPSHOT_ID: &str = r"^snap-[0-9a-f]{8,17}$";

/// A backup interval: minutes, hours or days (`30m`, `6h`, `1d`).
pub const BACKUP_INTERVAL: &str = r"^[1-9][0-9]{0,4}[mhd]$";
