//! `mooring iam-policy`: the IAM policies of the task role and of the
//! provisioner's CodeBuild role, derived from the code (`runners::iam`), as
//! JSON for `aws iam put-role-policy`, or as the CloudFormation the template
//! in `deploy/aws/` embeds.
//!
//! The template keeps generated blocks between `# BEGIN GENERATED <name>` and
//! `# END GENERATED <name>` lines; [`splice`] rewrites them and
//! `controller/tests/iam_template.rs` fails when they differ from the code
//! (`make iam-policy` rewrites them).

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use runners::iam::{self, InstallValues, Principal, Render};

/// How the policy is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyFormat {
    /// A policy document with concrete ARNs.
    Json,
    /// The `PolicyDocument` as the CloudFormation template embeds it.
    Cloudformation,
}

/// Flags of `mooring iam-policy`.
#[derive(Args, Debug, Clone)]
pub struct IamPolicyArgs {
    /// Whose policy: `task` (mooring serve) or `provisioner` (the CodeBuild role).
    #[arg(long, default_value = "task")]
    pub role: Principal,
    #[arg(long, value_enum, default_value = "json")]
    pub format: PolicyFormat,
    /// One of the role's policies (the task role's grants are split by
    /// service into managed policies: `services`, `queues`, `nodes`); without
    /// it, everything the role may do in one document.
    #[arg(long)]
    pub part: Option<String>,
    /// AWS partition of the ARNs.
    #[arg(long, default_value = "aws")]
    pub partition: String,
    /// Region of the ARNs (`*`: any).
    #[arg(long, default_value = "*")]
    pub region: String,
    /// Account of the ARNs (`*`: any).
    #[arg(long, default_value = "*")]
    pub account: String,
    /// The SQS queue EventBridge feeds (`--events-queue-url` of serve).
    #[arg(long)]
    pub events_queue_arn: Option<String>,
    /// The Secrets Manager secret of the signing key.
    #[arg(long)]
    pub signing_key_arn: Option<String>,
    /// Roles relays and workers may run as, and the roles of nodes' instance
    /// profiles (ARNs or patterns, repeatable or
    /// comma-separated): the same list the guardrails policy allows.
    #[arg(long = "pass-role", value_delimiter = ',')]
    pub pass_roles: Vec<String>,
    /// The provisioner's CodeBuild service role.
    #[arg(long)]
    pub provisioner_role_arn: Option<String>,
}

impl IamPolicyArgs {
    fn values(&self) -> InstallValues {
        InstallValues {
            partition: self.partition.clone(),
            region: self.region.clone(),
            account: self.account.clone(),
            events_queue_arn: self.events_queue_arn.clone(),
            signing_key_arn: self.signing_key_arn.clone(),
            pass_roles: self.pass_roles.iter().filter(|r| !r.is_empty()).cloned().collect(),
            provisioner_role_arn: self.provisioner_role_arn.clone(),
        }
    }
}

/// Runs `mooring iam-policy`: the policy on stdout; statements left out for
/// want of a value are named on stderr.
pub fn run(args: &IamPolicyArgs) -> anyhow::Result<ExitCode> {
    let part = match &args.part {
        Some(name) => Some(args.role.part(name).ok_or_else(|| {
            let names: Vec<_> = args.role.parts().iter().map(|p| p.name).collect();
            anyhow::anyhow!(
                "the {} role has no policy {name:?} (its policies: {})",
                args.role.as_str(),
                names.join(", ")
            )
        })?),
        None => None,
    };
    match args.format {
        PolicyFormat::Json => {
            let values = args.values();
            let policy = match part {
                Some(part) => iam::part_policy(args.role, part, Render::Plain(&values)),
                None => iam::policy(args.role, Render::Plain(&values)),
            };
            for o in &policy.omitted {
                eprintln!("note: left out {o}");
            }
            if part.is_none() && args.role.parts().len() > 1 {
                let names: Vec<_> = args.role.parts().iter().map(|p| p.name).collect();
                eprintln!(
                    "note: this is everything the {} role may do, in one document; IAM holds a managed policy to \
                     6,144 characters, so attach it as one policy per --part ({})",
                    args.role.as_str(),
                    names.join(", ")
                );
            }
            println!("{}", serde_json::to_string_pretty(&policy.document)?);
        }
        PolicyFormat::Cloudformation => match part {
            Some(part) => print!("{}", document_yaml(iam::part_policy(args.role, part, Render::CloudFormation), 0)?),
            None if args.role == Principal::Controller => print!("{}", task_policies_yaml(0)?),
            None => print!("{}", policy_yaml(args.role, 0)?),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// The task role's managed policies as CloudFormation resources
/// (`TaskPolicyServices`, ...), attached to `TaskRole`, indented by `indent`.
pub fn task_policies_yaml(indent: usize) -> anyhow::Result<String> {
    let mut out = String::new();
    for (i, (part, policy)) in iam::policies(Principal::Controller, Render::CloudFormation).into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // A JSON string is a YAML double-quoted scalar.
        let description = serde_json::to_string(&format!("mooring serve: {}", part.about))?;
        out.push_str(&format!(
            "{}:\n  Type: AWS::IAM::ManagedPolicy\n  Properties:\n    Description: {description}\n    Roles: [!Ref TaskRole]\n",
            part.logical_name(Principal::Controller),
        ));
        out.push_str(&document_yaml(policy, 4)?);
    }
    Ok(indented(&out, indent))
}

/// `PolicyDocument:` and the CloudFormation rendering of `role`'s policy, as
/// YAML indented by `indent` spaces.
pub fn policy_yaml(role: Principal, indent: usize) -> anyhow::Result<String> {
    document_yaml(iam::policy(role, Render::CloudFormation), indent)
}

fn document_yaml(policy: iam::Policy, indent: usize) -> anyhow::Result<String> {
    let document = policy.document;
    let yaml = serde_norway::to_string(&serde_json::json!({ "PolicyDocument": document }))?;
    // YAML 1.1 readers (PyYAML: moto, many tools) take a bare 2012-10-17 for a date.
    let yaml = yaml.replace("Version: 2012-10-17\n", "Version: '2012-10-17'\n");
    Ok(indented(&yaml, indent))
}

/// `BuildSpec: |` and the provisioner project's buildspec (the one the
/// controller creates projects with), indented by `indent` spaces.
pub fn buildspec_yaml(indent: usize) -> String {
    let mut out = "BuildSpec: |\n".to_string();
    for line in runners::workload::BUILDSPEC.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    indented(&out, indent)
}

fn indented(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    text.lines().map(|l| if l.is_empty() { "\n".to_string() } else { format!("{pad}{l}\n") }).collect()
}

/// The generated blocks of the template, by name, at `indent`.
pub fn block(name: &str, indent: usize) -> anyhow::Result<String> {
    match name {
        "task-policies" => task_policies_yaml(indent),
        "provisioner-policy" => policy_yaml(Principal::Provisioner, indent),
        "provisioner-buildspec" => Ok(buildspec_yaml(indent)),
        other => anyhow::bail!("unknown generated block {other:?}"),
    }
}

/// A template with every generated block replaced by what the code generates
/// now; errors name a block that is unknown or not closed.
pub fn splice(template: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut lines = template.split_inclusive('\n');
    while let Some(line) = lines.next() {
        out.push_str(line);
        let Some(name) = line.trim().strip_prefix("# BEGIN GENERATED ") else { continue };
        let name = name.split_whitespace().next().unwrap_or_default().to_string();
        let indent = line.len() - line.trim_start().len();
        let end = format!("# END GENERATED {name}");
        let mut closed = false;
        for rest in lines.by_ref() {
            if rest.trim() == end {
                out.push_str(&block(&name, indent)?);
                out.push_str(rest);
                closed = true;
                break;
            }
        }
        anyhow::ensure!(closed, "generated block {name:?} has no `{end}` line");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_between_the_markers() {
        let template = "a: 1\n  # BEGIN GENERATED provisioner-buildspec (make iam-policy)\n  old: x\n  # END GENERATED provisioner-buildspec\nb: 2\n";
        let out = splice(template).unwrap();
        assert!(out.starts_with("a: 1\n  # BEGIN GENERATED provisioner-buildspec (make iam-policy)\n  BuildSpec: |\n"));
        assert!(out.ends_with("  # END GENERATED provisioner-buildspec\nb: 2\n"), "{out}");
        assert!(!out.contains("old: x"));
        assert_eq!(splice(&out).unwrap(), out, "splicing is idempotent");
        assert!(splice("# BEGIN GENERATED task-policy\nx\n").is_err());
        assert!(splice("# BEGIN GENERATED nonsense\n# END GENERATED nonsense\n").is_err());
    }

    #[test]
    fn the_embedded_buildspec_reads_back_as_the_controllers() {
        let yaml = buildspec_yaml(0);
        let parsed: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(parsed["BuildSpec"], runners::workload::BUILDSPEC);
    }

    #[test]
    fn the_cloudformation_policy_reads_back_as_the_generated_document() {
        for role in Principal::ALL {
            let parsed: serde_json::Value = serde_norway::from_str(&policy_yaml(role, 4).unwrap()).unwrap();
            assert_eq!(parsed["PolicyDocument"], iam::policy(role, Render::CloudFormation).document);
        }
        // `!Ref` is a CloudFormation tag a plain YAML reader keeps as a string.
        let yaml = task_policies_yaml(2).unwrap().replace("!Ref TaskRole", "TaskRole");
        let parsed: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        for (part, policy) in iam::policies(Principal::Controller, Render::CloudFormation) {
            let resource = &parsed[part.logical_name(Principal::Controller)];
            assert_eq!(resource["Type"], "AWS::IAM::ManagedPolicy");
            assert_eq!(resource["Properties"]["Roles"][0], "TaskRole");
            assert_eq!(resource["Properties"]["PolicyDocument"], policy.document);
        }
    }
}
