#!/usr/bin/env bash
# Prepares moto for the charts in charts/ and writes, per chart, a values file
# with moto's identifiers: `scripts/moto-demo.sh VALUES_DIR` writes
# VALUES_DIR/<chart>.yaml (MOORING_AWS_ENDPOINT names moto, default
# http://127.0.0.1:4566). Creates, when missing: the ECS clusters `prod`,
# `batch` and `integrations` (Mooring never creates clusters), the execution and
# task roles, the secrets and the target groups the charts name (in the default
# VPC); the charts' subnets and security groups become the default VPC's, and
# the nodes' AMI moto's Ubuntu image; a new private hosted zone (`demo-<random>.internal`,
# in the default VPC) is the pulse node set's discovery zone. MOORING_DEMO_NODE_PORT,
# when set, becomes the nodes' API and health port. Prints VALUES_DIR.
# `scripts/render-charts.sh OUT_DIR VALUES_DIR` then renders the charts with them.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: scripts/moto-demo.sh VALUES_DIR}"
ENDPOINT="${MOORING_AWS_ENDPOINT:-http://127.0.0.1:4566}"
PYTHON="${MOORING_CACHE_DIR:-$HOME/.cache/mooring}/moto-venv/bin/python"
mkdir -p "$OUT"
"$PYTHON" - "$ENDPOINT" "$OUT" "${MOORING_DEMO_NODE_PORT:-}" <<'PY'
import json, pathlib, sys, uuid
import boto3

endpoint, out, node_port = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
ec2, ecs, iam = boto3.client("ec2", **kw), boto3.client("ecs", **kw), boto3.client("iam", **kw)
sm, elb = boto3.client("secretsmanager", **kw), boto3.client("elbv2", **kw)
route53 = boto3.client("route53", **kw)
MOTO_AMI = "ami-1e749f67"  # a real moto Ubuntu image

for name in ("prod", "batch", "integrations"):
    ecs.create_cluster(clusterName=name)
vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
subnet = sorted(s["SubnetId"] for s in ec2.describe_subnets(
    Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"])[0]
sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                           {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]


def role(name):
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}'))["Role"]["Arn"]


def secret(name):
    try:
        return sm.describe_secret(SecretId=name)["ARN"]
    except sm.exceptions.ResourceNotFoundException:
        return sm.create_secret(Name=name, SecretString="demo")["ARN"]


def target_group(name, port):
    try:
        return elb.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"]
    except elb.exceptions.TargetGroupNotFoundException:
        return elb.create_target_group(Name=name, Protocol="HTTP", Port=port, VpcId=vpc,
                                       TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]


# A zone of its own per run: the set's records are its own from the start.
zone_name = f"demo-{uuid.uuid4().hex[:8]}.internal"
zone = route53.create_hosted_zone(
    Name=zone_name, CallerReference=str(uuid.uuid4()),
    VPC={"VPCRegion": "us-east-1", "VPCId": vpc}, HostedZoneConfig={"PrivateZone": True},
)["HostedZone"]["Id"].split("/")[-1]

network = {"subnets": [subnet], "securityGroups": [sg]}
node = {"subnetId": subnet, "securityGroupIds": [sg], "ami": MOTO_AMI}
if node_port:
    node["apiPort"] = int(node_port)
values = {
    "relay-gateway": {
        **network,
        "executionRoleArn": role("gateway-execution"),
        "secrets": {"DB_PASSWORD": secret("gateway-db"), "SIGNING_KEY": secret("gateway-ed25519")},
        "targetGroupArn": target_group("gateway", 8000),
    },
    "integration-platform": {
        **network,
        "executionRoleArn": role("integrations-execution"),
        "taskRoleArn": role("integrations-task"),
        "secrets": {"DATABASE_URL": secret("integrations-db"), "REDIS_URL": secret("integrations-redis")},
        "service": {"targetGroupArn": target_group("integration-service", 8000)},
        "webhooks": {"targetGroupArn": target_group("webhook-receiver", 8080)},
    },
    "pulse-node": {**node, "discovery": {"privateZoneId": zone, "domain": f"pulse.{zone_name}"}},
    "rgb-lightning-node": dict(node),
    "proton-beam": {},
}
for chart, chart_values in values.items():
    # JSON is YAML: `mooring chart render -f` reads it as is.
    (out / f"{chart}.yaml").write_text(json.dumps(chart_values, indent=2) + "\n")
print(out)
PY
