//! From the SDK's errors to [`CloudError`]: one mapping for every service, so
//! retries and `Synced` reasons mean the same thing whichever API failed.
//!
//! The kind comes from AWS's error code first (codes are stable; messages are
//! not), then from the HTTP status, then from the kind of transport failure.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::cloud::{CloudError, ErrorKind, Op};

/// Codes AWS answers when a call was throttled.
const THROTTLED: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    // Route53: another change to the zone is still being applied.
    "PriorRequestNotComplete",
];

/// Codes for "the thing asked about does not exist".
const NOT_FOUND: &[&str] = &[
    "ServiceNotFoundException",
    // An INACTIVE service: DescribeServices leaves it out, so it is gone.
    "ServiceNotActiveException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ReplicationGroupNotFoundFault",
    "ResourceNotFoundException",
    "InvalidInstanceID.NotFound",
    "InvalidVolume.NotFound",
    // DetachVolume of a volume that is not attached.
    "InvalidAttachment.NotFound",
    "InvalidSnapshot.NotFound",
];

/// Codes for "something the call needs does not exist".
const MISSING_REFERENCE: &[&str] = &[
    "ClusterNotFoundException",
    "TargetNotFoundException",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidSecurityGroupID.NotFound",
    "InvalidVpcID.NotFound",
    "InvalidAMIID.NotFound",
    "TargetGroupNotFound",
    "TargetGroupNotFoundException",
    "LoadBalancerNotFound",
    "CacheSubnetGroupNotFoundFault",
    "CacheParameterGroupNotFound",
    "CacheSecurityGroupNotFound",
    "NoSuchHostedZone",
];

/// Codes for "a create met an existing resource of that name".
const ALREADY_EXISTS: &[&str] = &[
    "QueueAlreadyExists",
    "QueueNameExists",
    "AWS.SimpleQueueService.QueueNameExists",
    "ReplicationGroupAlreadyExists",
    "ReplicationGroupAlreadyExistsFault",
    "ResourceAlreadyExistsException",
];

/// Codes for "AWS refused the request as invalid".
const INVALID: &[&str] = &[
    "InvalidParameterException",
    "ValidationError",
    "ValidationException",
    "InvalidParameterValue",
    "InvalidParameterValueException",
    "InvalidParameterCombination",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "ClientException",
    "InvalidParameter",
    "MissingParameter",
    "InvalidInstanceID.Malformed",
    "InvalidVolumeID.Malformed",
    "InvalidSubnetID.Malformed",
    "InvalidAMIID.Malformed",
    // EC2: the instance or volume is not in a state that allows the call.
    "IncorrectInstanceState",
    "IncorrectState",
    "VolumeInUse",
    // EC2: a snapshot an AMI was registered from.
    "InvalidSnapshot.InUse",
    // EC2: a client token reused with other parameters.
    "IdempotentParameterMismatch",
    // CodeBuild.
    "InvalidInputException",
    // ELBv2: a target that is not running (or, by its message, does not exist).
    "InvalidTarget",
    // Route53: a CREATE of a record set that exists, a DELETE that does not match.
    "InvalidChangeBatch",
    "InvalidInput",
];

/// Codes for "an account quota is used up" (CodeBuild's concurrent builds).
const QUOTA: &[&str] = &["AccountLimitExceededException"];

/// Codes whose message tells whether a reference is missing: ECS reports a
/// missing subnet, security group, target group or task definition as an
/// invalid parameter ("... does not exist", "TaskDefinition not found.").
const REFERENCE_IN_MESSAGE: &[&str] = &["InvalidParameterException", "ClientException", "InvalidTarget"];

/// What kind of failure AWS's `code`, `message` and HTTP `status` describe;
/// `None` when they do not say (the caller then looks at the transport).
pub fn classify(code: Option<&str>, message: Option<&str>, status: Option<u16>) -> Option<ErrorKind> {
    if let Some(code) = code {
        // CreateService of a name that is taken (with another client token,
        // or by a service still draining).
        if code == "InvalidParameterException"
            && message.is_some_and(|m| m.contains("was not idempotent") || m.contains("still Draining"))
        {
            return Some(ErrorKind::AlreadyExists);
        }
        if REFERENCE_IN_MESSAGE.contains(&code) && message.is_some_and(names_missing_reference) {
            return Some(ErrorKind::MissingReference);
        }
        let table: [(&[&str], ErrorKind); 6] = [
            (THROTTLED, ErrorKind::Throttled),
            (QUOTA, ErrorKind::QuotaExceeded),
            (NOT_FOUND, ErrorKind::NotFound),
            (MISSING_REFERENCE, ErrorKind::MissingReference),
            (ALREADY_EXISTS, ErrorKind::AlreadyExists),
            (INVALID, ErrorKind::Invalid),
        ];
        if let Some((_, kind)) = table.iter().find(|(codes, _)| codes.contains(&code)) {
            return Some(*kind);
        }
    }
    match status? {
        429 => Some(ErrorKind::Throttled),
        500..=599 => Some(ErrorKind::Server),
        _ => None,
    }
}

/// True when an "invalid parameter" message says that something it refers to
/// does not exist.
fn names_missing_reference(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("does not exist")
        || message.contains("not found")
        || message.contains("unable to describe task definition")
}

/// The [`CloudError`] of a failed SDK call of `op`. Its message is AWS's code
/// and message (and request id) when AWS answered with an error, else the
/// chain of causes (connection refused, timeout, unparsable answer).
pub fn cloud_error<E>(op: &Op, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    CloudError::new(op, kind_of(&err), message_of(&err))
}

/// AWS's `code: message (request id ...)`, or the error's chain of causes.
///
/// Not the SDK's [`DisplayErrorContext`] alone: it ends with the `Debug` form
/// of the whole error, raw HTTP response and headers included, which is too
/// much for a status condition or an event.
fn message_of<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let (SdkError::ServiceError(_), Some(code)) = (err, err.code()) {
        let mut message = format!("{code}: {}", err.message().unwrap_or("(no message)"));
        if let Some(id) = err.meta().extra("aws_request_id") {
            message.push_str(&format!(" (request id {id})"));
        }
        return message;
    }
    // "error: cause: cause (Debug form)": keep the causes.
    let context = DisplayErrorContext(err).to_string();
    let debug = format!(" ({err:?})");
    let chain = context.strip_suffix(&debug).unwrap_or(&context).to_string();
    match err.code() {
        Some(code) if !chain.contains(code) => format!("{code}: {chain}"),
        _ => chain,
    }
}

/// Names the cluster when ECS says a cluster does not exist (AWS's message does
/// not), and says what to do: Mooring never creates clusters.
pub fn in_cluster(mut err: CloudError, cluster: &str) -> CloudError {
    if err.message.starts_with("ClusterNotFoundException") {
        err.message = format!(
            "cluster {cluster:?} does not exist; Mooring uses existing ECS clusters and never creates one: \
             create it, or fix spec.cluster ({})",
            err.message
        );
    }
    err
}

/// The [`ErrorKind`] of a failed SDK call.
pub fn kind_of<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> ErrorKind {
    match err {
        SdkError::TimeoutError(_) => ErrorKind::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => ErrorKind::Timeout,
        SdkError::DispatchFailure(_) => ErrorKind::Other,
        // The request could not even be built: a required field is missing.
        SdkError::ConstructionFailure(_) => ErrorKind::Invalid,
        SdkError::ResponseError(_) | SdkError::ServiceError(_) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            classify(err.code(), err.message(), status).unwrap_or(ErrorKind::Other)
        }
        // `SdkError` is non-exhaustive.
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;
    use crate::cloud::ops;

    fn service(code: &str, message: &str, status: u16) -> SdkError<ErrorMetadata, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let status = StatusCode::try_from(status).unwrap_or_else(|_| panic!("status {status}"));
        SdkError::service_error(meta, HttpResponse::new(status, SdkBody::empty()))
    }

    fn kind(code: &str, message: &str, status: u16) -> ErrorKind {
        cloud_error(&ops::DESCRIBE_SERVICES, service(code, message, status)).kind
    }

    #[test]
    fn codes_decide_the_kind() {
        for code in ["ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException"] {
            assert_eq!(kind(code, "slow down", 400), ErrorKind::Throttled, "{code}");
        }
        assert_eq!(kind("RequestThrottled", "x", 403), ErrorKind::Throttled);
        assert_eq!(kind("ClusterNotFoundException", "Cluster not found.", 400), ErrorKind::MissingReference);
        assert_eq!(kind("InvalidSubnetID.NotFound", "x", 400), ErrorKind::MissingReference);
        assert_eq!(kind("TargetGroupNotFound", "x", 400), ErrorKind::MissingReference);
        assert_eq!(kind("ServiceNotFoundException", "Service not found.", 400), ErrorKind::NotFound);
        assert_eq!(kind("AWS.SimpleQueueService.NonExistentQueue", "x", 400), ErrorKind::NotFound);
        assert_eq!(kind("QueueDoesNotExist", "x", 400), ErrorKind::NotFound);
        assert_eq!(kind("ReplicationGroupNotFoundFault", "x", 404), ErrorKind::NotFound);
        assert_eq!(kind("QueueAlreadyExists", "x", 400), ErrorKind::AlreadyExists);
        assert_eq!(kind("QueueNameExists", "x", 400), ErrorKind::AlreadyExists);
        assert_eq!(kind("ReplicationGroupAlreadyExists", "x", 400), ErrorKind::AlreadyExists);
        assert_eq!(kind("ReplicationGroupAlreadyExistsFault", "x", 400), ErrorKind::AlreadyExists);
        assert_eq!(kind("InvalidParameterException", "bad cpu", 400), ErrorKind::Invalid);
        let taken = "Creation of service was not idempotent.";
        assert_eq!(kind("InvalidParameterException", taken, 400), ErrorKind::AlreadyExists);
        let draining = "Unable to Start a service that is still Draining.";
        assert_eq!(kind("InvalidParameterException", draining, 400), ErrorKind::AlreadyExists);
        assert_eq!(kind("ValidationError", "x", 400), ErrorKind::Invalid);
        assert_eq!(kind("InvalidParameterValue", "x", 400), ErrorKind::Invalid);
    }

    #[test]
    fn an_invalid_parameter_naming_a_missing_thing_is_a_missing_reference() {
        let subnet = "Error retrieving subnet information for [subnet-0]: The subnet ID 'subnet-0' does not exist";
        assert_eq!(kind("InvalidParameterException", subnet, 400), ErrorKind::MissingReference);
        assert_eq!(kind("ClientException", "TaskDefinition not found.", 400), ErrorKind::MissingReference);
        assert_eq!(kind("ClientException", "Unable to describe task definition.", 400), ErrorKind::MissingReference);
        // Only for the "invalid parameter" codes.
        assert_eq!(kind("ValidationError", "Queue does not exist", 400), ErrorKind::Invalid);
    }

    #[test]
    fn node_codes() {
        for code in ["InvalidInstanceID.NotFound", "InvalidVolume.NotFound", "InvalidAttachment.NotFound"] {
            assert_eq!(kind(code, "x", 400), ErrorKind::NotFound, "{code}");
        }
        for code in ["InvalidSubnetID.NotFound", "InvalidGroup.NotFound", "InvalidAMIID.NotFound"] {
            assert_eq!(kind(code, "x", 400), ErrorKind::MissingReference, "{code}");
        }
        for code in ["IncorrectInstanceState", "VolumeInUse", "IdempotentParameterMismatch", "InvalidInputException"] {
            assert_eq!(kind(code, "x", 400), ErrorKind::Invalid, "{code}");
        }
        assert_eq!(kind("ResourceAlreadyExistsException", "x", 400), ErrorKind::AlreadyExists);
        assert_eq!(kind("AccountLimitExceededException", "x", 400), ErrorKind::QuotaExceeded);
        let absent = "The specified target does not exist or is not in the same VPC as the target group.";
        assert_eq!(kind("InvalidTarget", absent, 400), ErrorKind::MissingReference);
        let stopped = "The following targets are not in a running state and cannot be registered: 'i-1'";
        assert_eq!(kind("InvalidTarget", stopped, 400), ErrorKind::Invalid);
    }

    #[test]
    fn status_decides_when_the_code_does_not() {
        assert_eq!(kind("InternalError", "x", 500), ErrorKind::Server);
        assert_eq!(kind("ServiceUnavailable", "x", 503), ErrorKind::Server);
        assert_eq!(kind("Whatever", "x", 429), ErrorKind::Throttled);
        assert_eq!(kind("AccessDenied", "x", 403), ErrorKind::Other);
    }

    #[test]
    fn transport_failures() {
        let timeout: SdkError<ErrorMetadata, HttpResponse> = SdkError::timeout_error("took too long");
        assert_eq!(cloud_error(&ops::GET_QUEUE_URL, timeout).kind, ErrorKind::Timeout);
        let io: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        assert_eq!(cloud_error(&ops::GET_QUEUE_URL, io).kind, ErrorKind::Other);
        let slow: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::timeout("read timed out".into()));
        assert_eq!(cloud_error(&ops::GET_QUEUE_URL, slow).kind, ErrorKind::Timeout);
        let garbled: SdkError<ErrorMetadata, HttpResponse> = SdkError::response_error(
            "not XML",
            HttpResponse::new(StatusCode::try_from(502).unwrap_or_else(|_| panic!("502")), SdkBody::empty()),
        );
        assert_eq!(cloud_error(&ops::GET_QUEUE_URL, garbled).kind, ErrorKind::Server);
    }

    #[test]
    fn the_message_carries_code_and_text() {
        let e = cloud_error(&ops::CREATE_SERVICE, service("ClusterNotFoundException", "Cluster not found.", 400));
        assert_eq!(e.op, "ecs:CreateService");
        assert_eq!(e.message, "ClusterNotFoundException: Cluster not found.");
        let io: SdkError<ErrorMetadata, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused (os error 111)".into()));
        let e = cloud_error(&ops::GET_QUEUE_URL, io);
        assert_eq!(e.message, "dispatch failure: io error: connection refused (os error 111)");
    }

    #[test]
    fn a_missing_cluster_is_named() {
        let e = in_cluster(
            cloud_error(&ops::CREATE_SERVICE, service("ClusterNotFoundException", "Cluster not found.", 400)),
            "prod",
        );
        assert_eq!(e.kind, ErrorKind::MissingReference);
        assert_eq!(
            e.message,
            "cluster \"prod\" does not exist; Mooring uses existing ECS clusters and never creates one: create it, or fix spec.cluster (ClusterNotFoundException: Cluster not found.)"
        );
        let other =
            in_cluster(cloud_error(&ops::CREATE_SERVICE, service("InvalidParameterException", "bad", 400)), "prod");
        assert_eq!(other.message, "InvalidParameterException: bad");
    }
}
