# The built-in guardrails policy: what each namespace's documents may reference.
#
# data.policy is the Policy's spec.guardrails (api_types::policy::Guardrails);
# input is the document under review (see desired_state::admission), with
# input.references listing every AWS resource it names.
package mooring.admission

# The allow-lists of the document's namespace, else those of every other
# namespace; undefined (nothing restricted) when neither is set.
allowances := data.policy.namespaces[input.namespace]

allowances := data.policy.otherNamespaces if {
	not data.policy.namespaces[input.namespace]
}

# Which list each sort of reference is checked against (secrets: by prefix, below).
pattern_lists := {
	"role": "roleArns",
	"targetGroup": "targetGroupArns",
	"cluster": "clusters",
	"subnet": "subnets",
	"securityGroup": "securityGroups",
	"codebuildProject": "codebuildProjects",
	"instanceType": "instanceTypes",
	"hostedZone": "hostedZones",
	"instanceProfile": "instanceProfiles",
}

described := {
	"role": "IAM role",
	"secret": "secret",
	"targetGroup": "target group",
	"cluster": "ECS cluster",
	"subnet": "subnet",
	"securityGroup": "security group",
	"codebuildProject": "CodeBuild project",
	"instanceType": "instance type",
	"hostedZone": "hosted zone",
	"instanceProfile": "instance profile",
}

deny contains violation if {
	some ref in input.references
	list := pattern_lists[ref.type]
	allowed := allowances[list]
	not matches_any(allowed, ref.value)
	violation := {
		"field": ref.field,
		"message": sprintf("%s %s is not in namespace %s's %s", [described[ref.type], ref.value, input.namespace, list]),
	}
}

deny contains violation if {
	some ref in input.references
	ref.type == "secret"
	prefixes := allowances.secretArnPrefixes
	not starts_with_any(prefixes, ref.value)
	violation := {
		"field": ref.field,
		"message": sprintf("secret %s is not under namespace %s's secretArnPrefixes", [ref.value, input.namespace]),
	}
}

deny contains violation if {
	input.kind in {"Relay", "Worker"}
	ceiling := allowances.maxReplicas
	input.document.spec.scaling.max > ceiling
	violation := {
		"field": "spec.scaling.max",
		"message": sprintf("%v replicas is above namespace %s's maxReplicas (%v)", [input.document.spec.scaling.max, input.namespace, ceiling]),
	}
}

# IAM-style patterns: * is any run of characters, ? is one; no delimiters.
matches_any(patterns, value) if {
	some p in patterns
	glob.match(p, null, value)
}

starts_with_any(prefixes, value) if {
	some p in prefixes
	startswith(value, p)
}
