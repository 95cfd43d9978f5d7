#!/usr/bin/env bash
# Prepares moto for the examples and writes them, with moto's identifiers, to a
# directory: `scripts/moto-demo.sh OUT_DIR` (MOORING_AWS_ENDPOINT names moto,
# default http://127.0.0.1:4566). Creates, when missing: the ECS clusters
# `prod` and `batch` (Mooring never creates clusters), the execution role, the
# gateway's secret and target group (in the default VPC); the examples' subnet
# and security group become the default VPC's. Prints OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: scripts/moto-demo.sh OUT_DIR}"
ENDPOINT="${MOORING_AWS_ENDPOINT:-http://127.0.0.1:4566}"
PYTHON="${MOORING_CACHE_DIR:-$HOME/.cache/mooring}/moto-venv/bin/python"
mkdir -p "$OUT"
"$PYTHON" - "$ENDPOINT" "$OUT" <<'PY'
import pathlib, sys
import boto3

endpoint, out = sys.argv[1], pathlib.Path(sys.argv[2])
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
ec2, ecs, iam = boto3.client("ec2", **kw), boto3.client("ecs", **kw), boto3.client("iam", **kw)
sm, elb = boto3.client("secretsmanager", **kw), boto3.client("elbv2", **kw)

for name in ("prod", "batch"):
    ecs.create_cluster(clusterName=name)
vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
subnet = sorted(s["SubnetId"] for s in ec2.describe_subnets(
    Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"])[0]
sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                           {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]
try:
    role = iam.get_role(RoleName="gateway-execution")["Role"]["Arn"]
except iam.exceptions.NoSuchEntityException:
    role = iam.create_role(RoleName="gateway-execution", AssumeRolePolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}'))["Role"]["Arn"]
try:
    secret = sm.describe_secret(SecretId="gateway-db")["ARN"]
except sm.exceptions.ResourceNotFoundException:
    secret = sm.create_secret(Name="gateway-db", SecretString="demo")["ARN"]
try:
    target_group = elb.describe_target_groups(Names=["gateway"])["TargetGroups"][0]["TargetGroupArn"]
except elb.exceptions.TargetGroupNotFoundException:
    target_group = elb.create_target_group(Name="gateway", Protocol="HTTP", Port=8000, VpcId=vpc,
                                           TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]

replace = {
    "subnet-0a1b2c3d": subnet,
    "sg-0a1b2c3d": sg,
    "arn:aws:iam::123456789012:role/gateway-execution": role,
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:gateway-db-AbCdEf": secret,
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gateway/0123456789abcdef": target_group,
}
for path in sorted(pathlib.Path("examples").glob("*.yaml")):
    text = path.read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    (out / path.name).write_text(text)
print(out)
PY
