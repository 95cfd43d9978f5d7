-- Lookups of AWS events by the identities a resource's status records
-- (service ARN, task definition ARN, instance id), without a sequential scan.
CREATE INDEX resources_service_arn ON resources ((status->'service'->>'arn'));
CREATE INDEX resources_task_definition_arn ON resources ((status->>'taskDefinitionArn'));
CREATE INDEX resources_instance_id ON resources ((status->>'instanceId'));

-- The account-wide AWS names a resource takes (an ECS service name and task
-- definition family, SQS queue names), so two documents never map to one AWS
-- resource: the second create is refused. A claim goes with its resource.
CREATE TABLE name_claims (
    name  text PRIMARY KEY,
    uid   uuid NOT NULL REFERENCES resources (uid) ON DELETE CASCADE
);
CREATE INDEX name_claims_uid ON name_claims (uid);
