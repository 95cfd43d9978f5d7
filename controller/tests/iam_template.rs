//! The CloudFormation template embeds what the code generates: the task
//! role's and the provisioner role's policies (`mooring iam-policy`) and the
//! provisioner project's buildspec. This fails when they differ; `make
//! iam-policy` (this test with `UPDATE_IAM=1`) rewrites the embedded copies.

use std::path::PathBuf;

fn template() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/aws/mooring.yaml")
}

#[test]
fn the_template_embeds_the_generated_policies_and_buildspec() {
    let path = template();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let want = controller::iam::splice(&text).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    for block in ["task-policies", "provisioner-policy", "provisioner-buildspec"] {
        assert!(text.contains(&format!("# BEGIN GENERATED {block}")), "{} has no {block} block", path.display());
    }
    // The service starts once every policy of its role is attached.
    let depends = text.lines().find(|l| l.contains("DependsOn: [HttpsListener")).expect("the service's DependsOn");
    for part in runners::iam::Principal::Controller.parts() {
        let name = part.logical_name(runners::iam::Principal::Controller);
        assert!(depends.contains(&name), "the service does not wait for {name}: {depends}");
    }
    if std::env::var_os("UPDATE_IAM").is_some_and(|v| v == "1") {
        if want != text {
            std::fs::write(&path, &want).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            eprintln!("rewrote the generated blocks of {}", path.display());
        }
        return;
    }
    if want != text {
        let diff: Vec<String> = text
            .lines()
            .zip(want.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  template: {a}\n  code:     {b}", i + 1))
            .collect();
        panic!(
            "{} differs from what the code generates (an operation or its IAM scoping changed?).\n\
             Run `make iam-policy` and commit the template.\n{}",
            path.display(),
            diff.join("\n")
        );
    }
}
