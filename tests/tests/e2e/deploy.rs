//! `deploy/`: the CloudFormation templates pass `cfn-lint`, the Dockerfile
//! passes `hadolint` (both installed by `deploy/aws/tools.sh` into the cache
//! directory; a test skips, saying why, only when a tool cannot be installed),
//! and the Mooring stack creates in moto's CloudFormation with the resources
//! moto supports.
//!
//! moto's CloudFormation skips some resource types ([`MOTO_SKIPS`]): they are
//! taken out of the template for that run (references to them become
//! stand-in ARNs) and `cfn-lint` is what checks them. No container engine
//! runs here, so the image itself is not built (see deploy/aws/README.md).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use runners::iam::{self, InstallValues, Principal, Render};
use serde_norway::Value as Yaml;
use tests::{Moto, eventually, workspace_root};

/// Resource types moto's CloudFormation does not create (moto 5.2.5); the
/// test removes them and fails if the stack reports one (moto learned it:
/// move it to [`MOTO_CREATES`]).
const MOTO_SKIPS: &[&str] = &[
    "AWS::CodeBuild::Project",
    "AWS::SecretsManager::Secret",
    "AWS::SecretsManager::SecretTargetAttachment",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ElastiCache::SubnetGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::Logs::MetricFilter",
    "AWS::SQS::QueuePolicy",
];

/// What the stack must have created in moto: (type, how many).
const MOTO_CREATES: &[(&str, usize)] = &[
    ("AWS::ECS::Cluster", 1),
    ("AWS::ECS::TaskDefinition", 1),
    ("AWS::ECS::Service", 1),
    ("AWS::SQS::Queue", 1),
    ("AWS::Events::Rule", 3),
    ("AWS::IAM::Role", 3),
    ("AWS::IAM::Policy", 1),
    ("AWS::IAM::ManagedPolicy", 3),
    ("AWS::Logs::LogGroup", 1),
    ("AWS::ElasticLoadBalancingV2::LoadBalancer", 1),
    ("AWS::ElasticLoadBalancingV2::TargetGroup", 1),
    ("AWS::ElasticLoadBalancingV2::Listener", 1),
    ("AWS::EC2::SecurityGroup", 4),
    ("AWS::RDS::DBInstance", 1),
    ("AWS::S3::Bucket", 1),
];

/// A checker from `deploy/aws/tools.sh`, installed when missing; `None` (and
/// a message saying why) when it cannot be installed here.
fn tool(name: &str) -> Option<PathBuf> {
    let script = workspace_root().join("deploy/aws/tools.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["path", name])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !out.status.success() {
        eprintln!("skipped: {name} cannot be installed here: {}", String::from_utf8_lossy(&out.stderr).trim());
        return None;
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    path.is_file().then_some(path)
}

/// The CloudFormation templates: every one in `deploy/aws/`, and the GitOps
/// pipeline's (`deploy/pipeline/codepipeline.yaml`; the other files there are a
/// buildspec and a GitHub Actions workflow).
fn templates() -> Vec<PathBuf> {
    let dir = workspace_root().join("deploy/aws");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.push(workspace_root().join("deploy/pipeline/codepipeline.yaml"));
    out.sort();
    out
}

#[test]
fn cfn_lint_passes_on_every_template() {
    let Some(cfn_lint) = tool("cfn-lint") else { return };
    let templates = templates();
    assert!(templates.iter().any(|t| t.ends_with("mooring.yaml")), "{templates:?}");
    for template in templates {
        let out = Command::new(&cfn_lint).arg(&template).output().expect("cfn-lint runs");
        assert!(
            out.status.success(),
            "cfn-lint {} ({}):\n{}{}",
            template.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn hadolint_passes_on_the_dockerfile() {
    let Some(hadolint) = tool("hadolint") else { return };
    let root = workspace_root();
    let out = Command::new(&hadolint)
        .arg("--config")
        .arg(root.join("deploy/docker/.hadolint.yaml"))
        .arg(root.join("deploy/docker/Dockerfile"))
        .output()
        .expect("hadolint runs");
    assert!(
        out.status.success(),
        "hadolint ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).expect("a .dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"), "the build context leaves out target/");
}

/// The template without the resources moto skips; references to them become
/// stand-in ARNs (a policy needs an ARN) or strings.
fn for_moto(template: &str) -> (String, Vec<String>) {
    let mut doc: Yaml = serde_norway::from_str(template).expect("the template is YAML");
    let resources = doc.get_mut("Resources").and_then(Yaml::as_mapping_mut).expect("Resources");
    let mut skipped = Vec::new();
    resources.retain(|name, body| {
        let kind = body.get("Type").and_then(Yaml::as_str).unwrap_or_default();
        let skip = MOTO_SKIPS.contains(&kind);
        if skip {
            skipped.push(name.as_str().unwrap_or_default().to_string());
        }
        !skip
    });
    replace_refs(&mut doc, &skipped);
    let yaml = serde_norway::to_string(&doc).expect("YAML out");
    // moto reads YAML 1.1, where a bare 2012-10-17 is a date.
    let yaml = yaml.replace(": 2012-10-17\n", ": '2012-10-17'\n").replace(": 2010-09-09\n", ": '2010-09-09'\n");
    (yaml, skipped)
}

fn stand_in(name: &str) -> String {
    format!("arn:aws:moto-skipped:us-east-1:123456789012:{name}")
}

fn replace_refs(value: &mut Yaml, skipped: &[String]) {
    let target = |v: &Yaml| -> Option<String> {
        match v {
            Yaml::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_string),
            Yaml::Tagged(t) if t.tag == "GetAtt" => {
                t.value.as_str().and_then(|s| s.split('.').next()).map(str::to_string)
            }
            Yaml::Mapping(m) if m.len() == 1 => m
                .get("Ref")
                .and_then(Yaml::as_str)
                .map(str::to_string)
                .or_else(|| m.get("Fn::GetAtt")?.as_sequence()?.first()?.as_str().map(str::to_string)),
            _ => None,
        }
    };
    if let Some(name) = target(value).filter(|n| skipped.contains(n)) {
        *value = Yaml::String(stand_in(&name));
        return;
    }
    match value {
        Yaml::String(s) => {
            for name in skipped {
                *s = s.replace(&format!("${{{name}}}"), &stand_in(name));
            }
        }
        Yaml::Sequence(items) => items.iter_mut().for_each(|i| replace_refs(i, skipped)),
        Yaml::Mapping(m) => {
            let mut drop_depends = false;
            if let Some(depends) = m.get_mut("DependsOn") {
                match depends {
                    Yaml::Sequence(list) => {
                        list.retain(|d| !skipped.iter().any(|s| Some(s.as_str()) == d.as_str()));
                        drop_depends = list.is_empty();
                    }
                    Yaml::String(d) => drop_depends = skipped.contains(d),
                    _ => {}
                }
            }
            if drop_depends {
                m.remove("DependsOn");
            }
            m.values_mut().for_each(|v| replace_refs(v, skipped));
        }
        Yaml::Tagged(t) => replace_refs(&mut t.value, skipped),
        _ => {}
    }
}

/// A request to moto's Query (CloudFormation) or JSON (ACM) API. moto reads
/// the service and Region from the credential scope and checks no signature.
fn moto_request(http: &reqwest::Client, endpoint: &str, service: &str) -> reqwest::RequestBuilder {
    http.post(endpoint).header(
        "Authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, \
             SignedHeaders=host, Signature=0"
        ),
    )
}

async fn cloudformation(http: &reqwest::Client, endpoint: &str, params: &[(String, String)]) -> String {
    let mut form = vec![("Version".to_string(), "2010-05-15".to_string())];
    form.extend(params.iter().cloned());
    // application/x-www-form-urlencoded, as the Query protocol sends it.
    let encoded = reqwest::Url::parse_with_params("http://form.invalid/", &form).expect("a form");
    let resp = moto_request(http, endpoint, "cloudformation")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(encoded.query().unwrap_or_default().to_string())
        .send()
        .await
        .expect("moto answers");
    let status = resp.status();
    let body = resp.text().await.expect("a body");
    assert!(status.is_success(), "CloudFormation {:?}: {status}: {body}", params.first());
    body
}

/// Every `<tag>value</tag>` in an XML answer, in order.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open).skip(1).filter_map(|s| s.split(&close).next()).map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_creates_in_motos_cloudformation() {
    let moto = Moto::connect().await;
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().expect("a client");
    let template = std::fs::read_to_string(workspace_root().join("deploy/aws/mooring.yaml")).expect("the template");
    let (body, skipped) = for_moto(&template);
    assert!(skipped.iter().any(|s| s == "ProvisionerProject") && skipped.iter().any(|s| s == "Cache"), "{skipped:?}");

    // An ACM certificate (the listener needs one that exists) and the default VPC.
    let cert = moto_request(&http, &moto.endpoint, "acm")
        .header("X-Amz-Target", "CertificateManager.RequestCertificate")
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(r#"{"DomainName":"mooring.example.test"}"#)
        .send()
        .await
        .expect("moto answers");
    let cert: serde_json::Value = cert.json().await.expect("JSON");
    let cert = cert["CertificateArn"].as_str().expect("a certificate ARN").to_string();
    let (vpc, subnets) = moto.default_network().await;

    let stack = format!("mooring-e2e-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let params = [
        ("VpcId", vpc),
        ("PrivateSubnetIds", subnets.join(",")),
        ("LoadBalancerSubnetIds", subnets.join(",")),
        ("CertificateArn", cert),
        ("ImageUri", "123456789012.dkr.ecr.us-east-1.amazonaws.com/mooring:e2e".to_string()),
        // moto keeps AWS::NoValue inside lists, so the conditional statement
        // needs a value here (cfn-lint checks the empty default).
        ("PassRoleArns", "arn:aws:iam::123456789012:role/apps-*".to_string()),
    ];
    let mut form = vec![
        ("Action".to_string(), "CreateStack".to_string()),
        ("StackName".to_string(), stack.clone()),
        ("TemplateBody".to_string(), body),
        ("Capabilities.member.1".to_string(), "CAPABILITY_IAM".to_string()),
    ];
    for (i, (k, v)) in params.iter().enumerate() {
        form.push((format!("Parameters.member.{}.ParameterKey", i + 1), k.to_string()));
        form.push((format!("Parameters.member.{}.ParameterValue", i + 1), v.clone()));
    }
    cloudformation(&http, &moto.endpoint, &form).await;
    let action = |a: &str| vec![("Action".to_string(), a.to_string()), ("StackName".to_string(), stack.clone())];

    let status = eventually("the stack created", Duration::from_secs(60), async || {
        let xml = cloudformation(&http, &moto.endpoint, &action("DescribeStacks")).await;
        let status = xml_values(&xml, "StackStatus").first().cloned().unwrap_or_default();
        if status.ends_with("IN_PROGRESS") { Err(status) } else { Ok((status, xml)) }
    })
    .await;
    assert_eq!(status.0, "CREATE_COMPLETE", "{}", status.1);

    let xml = cloudformation(&http, &moto.endpoint, &action("ListStackResources")).await;
    // One <member> per resource: (type, status, physical id, logical id).
    let members: Vec<(String, String, String, String)> = xml
        .split("<member>")
        .skip(1)
        .map(|m| {
            let first = |tag: &str| xml_values(m, tag).into_iter().next().unwrap_or_default();
            (first("ResourceType"), first("ResourceStatus"), first("PhysicalResourceId"), first("LogicalResourceId"))
        })
        .collect();
    let logical = |name: &str| members.iter().find(|m| m.3 == name).map(|m| m.2.clone()).unwrap_or_default();
    let types: Vec<String> = members.iter().map(|m| m.0.clone()).collect();
    let states: Vec<String> = members.iter().map(|m| m.1.clone()).collect();
    let id_of = |kind: &str| members.iter().find(|m| m.0 == kind).map(|m| m.2.clone()).filter(|id| !id.is_empty());
    assert!(states.iter().all(|s| s == "CREATE_COMPLETE"), "{xml}");
    for (kind, count) in MOTO_CREATES {
        let n = types.iter().filter(|t| t == kind).count();
        assert_eq!(n, *count, "{kind}: {n} in the stack, expected {count}:\n{types:?}");
    }
    for kind in MOTO_SKIPS {
        assert!(!types.iter().any(|t| t == kind), "moto created {kind} now: move it to MOTO_CREATES");
    }

    // The resources are really there: the cluster runs the service, the queue exists.
    let cluster = id_of("AWS::ECS::Cluster").expect("a cluster id");
    let service = id_of("AWS::ECS::Service").expect("a service id");
    let name = service.rsplit('/').next().expect("a service name").to_string();
    let found = moto.cloud.ecs.describe_services(&cluster, &[name]).await.expect("moto answers");
    assert_eq!(found.len(), 1, "the stack's service in its cluster");
    assert!(found[0].task_definition.contains(":task-definition/"), "{:?}", found[0]);
    let queue_name = id_of("AWS::SQS::Queue").expect("a queue").rsplit('/').next().expect("a name").to_string();
    assert!(moto.cloud.queues.queue_url(&queue_name).await.expect("moto answers").is_some());

    // The policies CloudFormation attached are exactly what `mooring iam-policy`
    // renders for these values: the embedded form resolves to the plain one.
    let events_queue = format!("arn:aws:sqs:us-east-1:123456789012:{queue_name}");
    let values = InstallValues {
        partition: "aws".into(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
        events_queue_arn: Some(events_queue),
        signing_key_arn: Some(stand_in("SigningKeySecret")),
        pass_roles: vec!["arn:aws:iam::123456789012:role/apps-*".into()],
        provisioner_role_arn: Some(format!("arn:aws:iam::123456789012:role/{}", logical("ProvisionerRole"))),
    };
    let xml = iam_query(
        &http,
        &moto.endpoint,
        &[
            ("Action", "GetRolePolicy"),
            ("RoleName", &logical("ProvisionerRole")),
            ("PolicyName", "mooring-provisioner"),
        ],
    )
    .await;
    let encoded = xml_values(&xml, "PolicyDocument").into_iter().next().expect("a policy document");
    let attached: serde_json::Value = serde_json::from_str(&url_decoded(&encoded)).expect("the document is JSON");
    assert_eq!(attached, iam::policy(Principal::Provisioner, Render::Plain(&values)).document, "mooring-provisioner");
    // The task role's managed policies: attached to it, each as its part renders.
    let xml =
        iam_query(&http, &moto.endpoint, &[("Action", "ListAttachedRolePolicies"), ("RoleName", &logical("TaskRole"))])
            .await;
    let attached_arns = xml_values(&xml, "PolicyArn");
    for (part, want) in iam::policies(Principal::Controller, Render::Plain(&values)) {
        let arn = logical(&part.logical_name(Principal::Controller));
        assert!(attached_arns.contains(&arn), "{arn} is not attached to the task role: {attached_arns:?}");
        let xml = iam_query(&http, &moto.endpoint, &[("Action", "GetPolicy"), ("PolicyArn", &arn)]).await;
        let version = xml_values(&xml, "DefaultVersionId").into_iter().next().expect("a default version");
        let xml = iam_query(
            &http,
            &moto.endpoint,
            &[("Action", "GetPolicyVersion"), ("PolicyArn", &arn), ("VersionId", &version)],
        )
        .await;
        let encoded = xml_values(&xml, "Document").into_iter().next().expect("a policy document");
        let attached: serde_json::Value = serde_json::from_str(&url_decoded(&encoded)).expect("the document is JSON");
        assert_eq!(attached, want.document, "the task role's {} policy as CloudFormation made it", part.name);
    }

    // moto deletes the stack's role before detaching its managed policies
    // (AWS detaches first: the policies name the role) and refuses: detach
    // them here, as AWS would.
    for arn in &attached_arns {
        iam_query(
            &http,
            &moto.endpoint,
            &[("Action", "DetachRolePolicy"), ("RoleName", &logical("TaskRole")), ("PolicyArn", arn)],
        )
        .await;
    }
    cloudformation(&http, &moto.endpoint, &action("DeleteStack")).await;
}

/// A call to moto's IAM Query API.
async fn iam_query(http: &reqwest::Client, endpoint: &str, params: &[(&str, &str)]) -> String {
    let mut form = vec![("Version", "2010-05-08")];
    form.extend_from_slice(params);
    let encoded = reqwest::Url::parse_with_params("http://form.invalid/", &form).expect("a form");
    let resp = moto_request(http, endpoint, "iam")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(encoded.query().unwrap_or_default().to_string())
        .send()
        .await
        .expect("moto answers");
    let status = resp.status();
    let body = resp.text().await.expect("a body");
    assert!(status.is_success(), "IAM {params:?}: {status}: {body}");
    body
}

/// Percent-decoding (IAM returns policy documents URL-encoded), with XML's
/// escapes undone first.
fn url_decoded(text: &str) -> String {
    let text = text.replace("&amp;", "&").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">");
    let url = reqwest::Url::parse(&format!("http://decode.invalid/?d={}", text.replace('+', "%2B"))).expect("a URL");
    url.query_pairs().next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[test]
fn moto_stand_ins_replace_every_reference_to_a_skipped_resource() {
    let (body, skipped) = for_moto(
        "Resources:\n  S:\n    Type: AWS::SecretsManager::Secret\n  Q:\n    Type: AWS::SQS::Queue\n    DependsOn: [S]\n    Properties:\n      A: !Ref S\n      B: !GetAtt S.Arn\n      C: !Sub '${S}:x'\n      D: {'Fn::GetAtt': [S, Arn]}\n",
    );
    assert_eq!(skipped, ["S"]);
    assert!(!body.contains("Type: AWS::SecretsManager::Secret"), "{body}");
    assert_eq!(body.matches("arn:aws:moto-skipped:us-east-1:123456789012:S").count(), 4, "{body}");
    assert!(!body.contains("DependsOn"), "DependsOn dropped: {body}");
}
