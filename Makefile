# The two commands of the README, and a few conveniences.
.PHONY: run test stack stack-down schemas iam-policy

## Bring up Postgres, Redis and moto, then run Mooring with the example charts.
run:
	./scripts/run.sh

## Every check and test: fmt, clippy, unit, integration and end-to-end tests.
test:
	./scripts/test.sh

stack:
	./deploy/local/stack.sh up

stack-down:
	./deploy/local/stack.sh down

## Rewrite the committed JSON Schemas after changing api-types.
schemas:
	. scripts/env.sh && UPDATE_SCHEMAS=1 cargo test --workspace --test schemas

## Rewrite the IAM policies and the buildspec embedded in deploy/aws/mooring.yaml
## (after adding an AWS operation or changing its scoping in runners/src/iam/).
iam-policy:
	. scripts/env.sh && UPDATE_IAM=1 cargo test --workspace --test iam_template
