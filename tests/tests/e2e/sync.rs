//! `mooring sync` against a running server: commits applied with their SHA and
//! source, no-op re-syncs, validation before anything changes, the prune guard
//! (empty checkouts, mass prunes, other sources, protected resources), drift
//! shown in a dry run and restored by the next sync, sync waves in order, charts
//! in the tree, and the CLI's configuration file.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Server, Stack, condition, mooring_bin, relay_yaml, worker_yaml, workspace_root};

const SHA_A: &str = "aaaaaaa1111111111111111111111111111111aa";
const SHA_B: &str = "bbbbbbb2222222222222222222222222222222bb";
const SHA_C: &str = "ccccccc3333333333333333333333333333333cc";
const IMAGE_1: &str = "public.ecr.aws/acme/app:1.0.0";
const IMAGE_2: &str = "public.ecr.aws/acme/app:2.0.0";

/// A resource as the API returns it.
async fn read(server: &Server, plural: &str, name: &str) -> Option<Value> {
    let resp = server.api(Method::GET, &format!("/v1/namespaces/default/{plural}/{name}")).send().await.expect("GET");
    if resp.status() == StatusCode::NOT_FOUND {
        return None;
    }
    Some(resp.json().await.expect("JSON"))
}

/// The commit of the newest revision of a resource.
async fn newest_commit(server: &Server, plural: &str, name: &str) -> Value {
    let revs = server.get_json(&format!("/v1/namespaces/default/{plural}/{name}/revisions")).await.expect("revisions");
    revs["items"][0]["commit"].clone()
}

/// An RFC 3339 UTC time (`…T10:00:00Z` or `…T10:00:00.123456Z`) as comparable
/// (seconds part, microseconds), whatever the precision it was written with.
fn instant(ts: &str) -> (String, u32) {
    let ts = ts.trim_end_matches('Z');
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
    let micros: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    (secs.to_string(), micros.parse().expect("digits"))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_applies_commits_prunes_safely_and_reports_drift() {
    let stack = Stack::new("sync_commits").await;
    let server = stack.server().start().await;
    let server = &server;
    // Commit A: three relays in two files, two workers in a subdirectory.
    stack.write(
        "repo/relays.yaml",
        &format!("{}---\n{}", relay_yaml("a", "default", IMAGE_1), relay_yaml("b", "default", IMAGE_1)),
    );
    stack.write("repo/c.yaml", &relay_yaml("c", "default", IMAGE_1));
    let workers = |both: bool| {
        let mut text = worker_yaml("w1", "default", IMAGE_1);
        if both {
            text = format!("{text}---\n{}", worker_yaml("w2", "default", IMAGE_1));
        }
        text
    };
    stack.write("repo/workers/all.yaml", &workers(true));
    let repo = stack.dir.join("repo");
    let repo = path(&repo);
    let sync = |revision: &'static str, extra: &'static [&'static str]| {
        let mut args = vec!["sync", "--dir", repo, "--revision", revision, "--source", "platform"];
        args.extend_from_slice(extra);
        async move { server.cli(&args).await }
    };

    let first = sync(SHA_A, &[]).await;
    first
        .success()
        .stdout_has("+ relay.mooring/default/a will be created")
        .stdout_has("Plan: 5 to add, 0 to change, 0 to prune, 0 unchanged.");
    let a = read(server, "relays", "a").await.expect("a exists");
    assert_eq!(a["metadata"]["labels"]["mooring/managed-by"], "gitops", "{a:#}");
    assert_eq!(a["metadata"]["labels"]["mooring/source"], "platform", "{a:#}");
    assert_eq!(a["metadata"]["appliedRevision"], SHA_A, "{a:#}");
    assert_eq!(newest_commit(server, "workers", "w2").await, SHA_A);

    // The same commit again: nothing to do, both as a dry run and for real.
    sync(SHA_A, &["--dry-run"]).await.code_is(0).stdout_has("= relay.mooring/default/a unchanged");
    sync(SHA_A, &[]).await.success().stdout_has("No changes");

    // Commit B: one file changed, one document removed; a prune takes exactly that one.
    stack.write("repo/c.yaml", &relay_yaml("c", "default", IMAGE_2));
    stack.write("repo/workers/all.yaml", &workers(false));
    sync(SHA_B, &["--prune", "--dry-run"])
        .await
        .code_is(2)
        .stdout_has("~ relay.mooring/default/c will be changed")
        .stdout_has(&format!("~ spec.containers[0].image: \"{IMAGE_1}\" → \"{IMAGE_2}\""))
        .stdout_has("- worker.mooring/default/w2 will be pruned");
    sync(SHA_B, &["--prune"]).await.success().stdout_has("Plan: 0 to add, 1 to change, 1 to prune, 3 unchanged.");
    assert_eq!(newest_commit(server, "relays", "c").await, SHA_B);
    assert_eq!(read(server, "relays", "c").await.unwrap()["metadata"]["appliedRevision"], SHA_B);
    assert_eq!(read(server, "relays", "a").await.unwrap()["metadata"]["appliedRevision"], SHA_A, "unchanged");
    let w2 = read(server, "workers", "w2").await;
    assert!(w2.is_none() || w2.as_ref().unwrap()["metadata"]["deletionTimestamp"].is_string(), "{w2:?}");
    // A third sync at B is a no-op with exit 0.
    sync(SHA_B, &["--prune"]).await.code_is(0).stdout_has("No changes");
    assert_eq!(read(server, "relays", "c").await.unwrap()["metadata"]["generation"], 2);

    // An invalid document aborts the whole sync, naming file, document and field;
    // the valid change beside it is not applied.
    stack.write(
        "repo/relays.yaml",
        &format!("{}---\n{}", relay_yaml("a", "default", IMAGE_2), relay_yaml("b", "default", IMAGE_1)),
    );
    stack.write("repo/bad.yaml", &relay_yaml("bad", "default", IMAGE_1).replace("max: 8", "max: 1"));
    let invalid = sync(SHA_C, &["--prune"]).await;
    invalid.code_is(1).stderr_has("nothing was applied").stderr_has("bad.yaml document 1: spec.scaling.max");
    assert_eq!(read(server, "relays", "a").await.unwrap()["metadata"]["generation"], 1, "nothing applied");
    assert!(read(server, "relays", "bad").await.is_none());
    std::fs::remove_file(stack.dir.join("repo/bad.yaml")).expect("remove bad.yaml");
    stack.write(
        "repo/relays.yaml",
        &format!("{}---\n{}", relay_yaml("a", "default", IMAGE_1), relay_yaml("b", "default", IMAGE_1)),
    );

    // An empty checkout is refused; so is pruning 2 of the 4 remaining (more than 30%).
    let empty = stack.dir.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    server
        .cli(&["sync", "--dir", path(&empty), "--revision", SHA_C, "--source", "platform", "--prune"])
        .await
        .code_is(1)
        .stderr_has("refusing to sync")
        .stderr_has("holds no documents");
    std::fs::remove_file(stack.dir.join("repo/c.yaml")).expect("remove c.yaml");
    std::fs::remove_dir_all(stack.dir.join("repo/workers")).expect("remove workers/");
    sync(SHA_C, &["--prune"]).await.code_is(1).stderr_has("refusing to prune 2 of 4").stderr_has("--allow-mass-prune");
    assert!(read(server, "relays", "c").await.unwrap()["metadata"]["deletionTimestamp"].is_null());
    sync(SHA_C, &["--prune", "--max-prune-percent", "50", "--dry-run"])
        .await
        .code_is(2)
        .stdout_has("- relay.mooring/default/c will be pruned")
        .stdout_has("- worker.mooring/default/w1 will be pruned");
    stack.write("repo/c.yaml", &relay_yaml("c", "default", IMAGE_2));
    stack.write("repo/workers/all.yaml", &workers(false));

    // A second source: its own resources only. It cannot take over "a", and a
    // prune of either source leaves the other's resources alone.
    stack.write("payments/p1.yaml", &relay_yaml("p1", "default", IMAGE_1));
    stack.write("payments/p2.yaml", &relay_yaml("p2", "default", IMAGE_1));
    let payments = stack.dir.join("payments");
    let payments = path(&payments);
    let pay = |extra: &'static [&'static str]| {
        let mut args = vec!["sync", "--dir", payments, "--revision", SHA_A, "--source", "payments", "--prune"];
        args.extend_from_slice(extra);
        async move { server.cli(&args).await }
    };
    pay(&[]).await.success().stdout_has("Plan: 2 to add, 0 to change, 0 to prune, 0 unchanged.");
    sync(SHA_B, &["--prune"]).await.success().stdout_has("No changes");
    assert!(read(server, "relays", "p1").await.unwrap()["metadata"]["deletionTimestamp"].is_null());
    stack.write("payments/a.yaml", &relay_yaml("a", "default", IMAGE_1));
    pay(&[]).await.code_is(1).stderr_has("belongs to GitOps source \"platform\"");
    std::fs::remove_file(stack.dir.join("payments/a.yaml")).expect("remove a.yaml");
    assert_eq!(read(server, "relays", "a").await.unwrap()["metadata"]["labels"]["mooring/source"], "platform");

    // Drift: an API edit of a gitops resource shows in a dry run with its field
    // diff (exit 2); an operational annotation added beside it is not drift. The
    // next sync restores git's spec and keeps the annotation.
    let patched = server
        .api(Method::PATCH, "/v1/namespaces/default/relays/b")
        .header("content-type", "application/merge-patch+json")
        .body(
            json!({"metadata": {"annotations": {"mooring/scaling-paused": "true"}}, "spec": {"scaling": {"max": 9}}})
                .to_string(),
        )
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), StatusCode::OK, "{}", patched.text().await.unwrap_or_default());
    let drift = sync(SHA_B, &["--dry-run"]).await;
    drift
        .code_is(2)
        .stdout_has("~ relay.mooring/default/b will be changed (drift: changed through the API")
        .stdout_has("~ spec.scaling.max: 9 → 8")
        .stdout_has("Plan: 0 to add, 1 to change, 0 to prune, 3 unchanged.");
    assert!(!drift.stdout.contains("scaling-paused"), "an operational annotation is not drift\n{drift}");
    sync(SHA_B, &[]).await.success();
    let b = read(server, "relays", "b").await.unwrap();
    assert_eq!(b["spec"]["scaling"]["max"], 8, "{b:#}");
    assert_eq!(b["metadata"]["annotations"]["mooring/scaling-paused"], "true", "{b:#}");
    sync(SHA_B, &["--dry-run"]).await.code_is(0);

    // A resource git protects is never pruned, even by a mass prune.
    stack.write(
        "repo/c.yaml",
        &relay_yaml("c", "default", IMAGE_2)
            .replace("  labels:\n", "  annotations:\n    mooring/prune: disabled\n  labels:\n"),
    );
    sync(SHA_C, &[]).await.success();
    std::fs::remove_file(stack.dir.join("repo/c.yaml")).expect("remove c.yaml");
    sync(SHA_C, &["--prune", "--allow-mass-prune"])
        .await
        .success()
        .stdout_has("Plan: 0 to add, 0 to change, 0 to prune");
    assert!(read(server, "relays", "c").await.unwrap()["metadata"]["deletionTimestamp"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_waves_apply_in_order_and_charts_render_in_the_tree() {
    let stack = Stack::new("sync_waves").await;
    let server = stack.server().start().await;
    let server = &server;
    // Wave -1: a worker; wave 0 (no annotation): a relay. The relay is written only
    // once the worker is Ready.
    let with_wave = |doc: String, wave: &str| {
        doc.replacen("metadata:\n", &format!("metadata:\n  annotations:\n    mooring/sync-wave: \"{wave}\"\n"), 1)
    };
    stack.write("waves/1-relay.yaml", &relay_yaml("front", "default", IMAGE_1));
    stack.write("waves/2-worker.yaml", &with_wave(worker_yaml("queue-first", "default", IMAGE_1), "-1"));
    // A chart in the tree is rendered with its defaults.
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/proton-beam");
    let out = server.cli(&["chart", "render", path(&chart), "--set", "namespace=default", "--set", "name=beam"]).await;
    out.success();
    stack.write("waves/beam.yaml", &out.stdout);
    let dir = stack.dir.join("waves");
    let sync = server
        .cli(&["sync", "--dir", path(&dir), "--revision", SHA_A, "--source", "waves", "--wave-timeout", "2m"])
        .await;
    sync.success().stdout_has("wave -1: Ready").stdout_has("Plan: 3 to add");
    let plan_order: Vec<&str> = sync.stdout.lines().filter(|l| l.starts_with("+ ")).collect();
    assert_eq!(
        plan_order,
        [
            "+ worker.mooring/default/queue-first will be created",
            "+ relay.mooring/default/front will be created",
            "+ worker.mooring/default/beam will be created"
        ],
        "{sync}"
    );
    let worker = read(server, "workers", "queue-first").await.expect("worker");
    let relay = read(server, "relays", "front").await.expect("relay");
    let ready_at =
        condition(&worker, "Ready").expect("Ready")["lastTransitionTime"].as_str().expect("time").to_string();
    let created = relay["metadata"]["creationTimestamp"].as_str().expect("time").to_string();
    assert!(
        instant(&created) >= instant(&ready_at),
        "wave 0 was written ({created}) before wave -1 was Ready ({ready_at})"
    );
    server.cli(&["sync", "--dir", path(&dir), "--revision", SHA_A, "--source", "waves", "--dry-run"]).await.code_is(0);

    // A wave that never becomes Ready (its relay is paused) stops the sync with
    // exit 1 after its timeout, naming the resource; the next wave is not applied.
    let paused = "metadata:\n  annotations:\n    mooring/reconcile: paused\n    mooring/sync-wave: \"-5\"\n";
    stack
        .write("stuck/0-first.yaml", &relay_yaml("stuck-first", "default", IMAGE_1).replacen("metadata:\n", paused, 1));
    stack.write("stuck/1-next.yaml", &relay_yaml("stuck-next", "default", IMAGE_1));
    let stuck = stack.dir.join("stuck");
    server
        .cli(&["sync", "--dir", path(&stuck), "--revision", SHA_B, "--source", "stuck", "--wave-timeout", "3s"])
        .await
        .code_is(1)
        .stderr_has("wave -5 did not become Ready within 3s")
        .stderr_has("relay.mooring/default/stuck-first");
    assert!(read(server, "relays", "stuck-first").await.is_some());
    assert!(read(server, "relays", "stuck-next").await.is_none(), "the next wave must not be applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_file_names_server_token_and_namespace() {
    let stack = Stack::new("cli_config").await;
    let server = stack.server().start().await;
    stack.write("team.yaml", &relay_yaml("gw", "team-x", IMAGE_1));
    server.cli(&["apply", "-f", path(&stack.dir.join("team.yaml"))]).await.success();
    // The default file ($XDG_CONFIG_HOME/mooring/config.toml) with two contexts.
    let config = format!(
        "current-context = \"dev\"\n\n[contexts.dev]\nserver = \"{}\"\ntoken-env = \"TEAM_TOKEN\"\nnamespace = \"team-x\"\n\n\
         [contexts.nowhere]\nserver = \"http://127.0.0.1:1\"\n",
        server.url("")
    );
    stack.write("config/mooring/config.toml", &config);
    let env = [("TEAM_TOKEN", server.token())];
    stack.run_with(&env, &["get", "relays"]).await.success().stdout_has("gw");
    stack.run_with(&env, &["describe", "relay", "gw"]).await.success();
    stack.run_with(&env, &["config"]).await.success().stdout_has("context:     dev").stdout_has("namespace:   team-x");
    // Another context, and a flag over the context.
    stack.run_with(&env, &["--context", "nowhere", "get", "relays"]).await.code_is(1).stderr_has("127.0.0.1:1");
    let flag = server.url("");
    let token = server.token().to_string();
    stack
        .run_with(
            &env,
            &["--context", "nowhere", "--server", &flag, "--token", &token, "get", "relays", "-n", "team-x"],
        )
        .await
        .success()
        .stdout_has("gw");
    stack.run_with(&env, &["--context", "missing", "get", "relays"]).await.code_is(1).stderr_has("context \"missing\"");
    stack.run_with(&[], &["get", "relays"]).await.code_is(1).stderr_has("TEAM_TOKEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_resource_is_left_alone_until_resumed() {
    let stack = Stack::new("reconcile_paused").await;
    let server = stack.server().start().await;
    let paused = relay_yaml("held", "default", IMAGE_1).replacen(
        "metadata:\n",
        "metadata:\n  annotations:\n    mooring/reconcile: paused\n",
        1,
    );
    let file = stack.write("held.yaml", &paused);
    let file = path(&file);
    server.cli(&["apply", "-f", file]).await.success();
    server.cli(&["wait", "relay", "held", "--for", "condition=Synced=False", "--timeout", "1m"]).await.success();
    let held = read(&server, "relays", "held").await.expect("held");
    let synced = condition(&held, "Synced").expect("Synced");
    assert_eq!(synced["reason"], "ReconcilePaused", "{held:#}");
    assert!(held["status"]["service"].is_null(), "nothing was created in AWS: {held:#}");
    // Resumed: the relay is reconciled and becomes Ready.
    stack.write("held.yaml", &relay_yaml("held", "default", IMAGE_1));
    server.cli(&["apply", "-f", file]).await.success();
    server.cli(&["wait", "relay", "held", "--for", "condition=Ready", "--timeout", "2m"]).await.success();
    let held = read(&server, "relays", "held").await.expect("held");
    assert!(held["status"]["service"]["name"].is_string(), "{held:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_source_does_not_revert_an_incident_fix() {
    let stack = Stack::new("sync_suspend").await;
    let server = stack.server().start().await;
    let server = &server;
    stack.write("repo/a.yaml", &relay_yaml("a", "default", IMAGE_1));
    stack.write("repo/b.yaml", &relay_yaml("b", "default", IMAGE_1));
    let repo = stack.dir.join("repo");
    let repo = path(&repo);
    let sync = |revision: &'static str| {
        let args = vec!["sync", "--dir", repo, "--revision", revision, "--source", "platform", "--prune"];
        async move { server.cli(&args).await }
    };
    sync(SHA_A).await.success();
    let source = server.get_json("/v1/sources/platform").await.expect("source");
    assert_eq!((source["lastRevision"].as_str(), source["suspended"].as_bool()), (Some(SHA_A), Some(false)));

    // The incident: suspend the source, fix "a" through the API.
    server.cli(&["sync", "--suspend", "platform", "--reason", "incident 42"]).await.success().stdout_has("suspended");
    let fix = server
        .api(Method::PATCH, "/v1/namespaces/default/relays/a")
        .header("content-type", "application/merge-patch+json")
        .body(json!({"spec": {"scaling": {"max": 20}}}).to_string())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(fix.status(), StatusCode::OK);
    // The controller reports the drift as a condition.
    server.cli(&["wait", "relay", "a", "--for", "condition=Drifted=True", "--timeout", "1m"]).await.success();
    let a = read(server, "relays", "a").await.unwrap();
    assert_eq!(condition(&a, "Drifted").expect("Drifted")["reason"], "ChangedOutsideGit", "{a:#}");
    // A dry run says the source is suspended.
    let args = ["sync", "--dir", repo, "--revision", SHA_B, "--source", "platform", "--prune", "--dry-run"];
    server.cli(&args).await.code_is(2).stdout_has("Note: source \"platform\" is suspended").stdout_has("incident 42");
    // The next commit's sync is refused and changes nothing; its plan still shows.
    stack.write("repo/b.yaml", &relay_yaml("b", "default", IMAGE_2));
    sync(SHA_B).await.code_is(1).stderr_has("suspended").stderr_has("incident 42").stdout_has("drift");
    assert_eq!(read(server, "relays", "a").await.unwrap()["spec"]["scaling"]["max"], 20);
    assert_eq!(read(server, "relays", "b").await.unwrap()["metadata"]["generation"], 1);
    assert_eq!(server.get_json("/v1/sources/platform").await.expect("source")["lastRevision"], SHA_A);

    // Resumed: the next sync applies git again.
    server.cli(&["sync", "--resume", "platform"]).await.success().stdout_has("resumed");
    sync(SHA_B).await.success().stdout_has("Plan: 0 to add, 2 to change, 0 to prune");
    assert_eq!(read(server, "relays", "a").await.unwrap()["spec"]["scaling"]["max"], 8);
    server.cli(&["wait", "relay", "a", "--for", "condition=Drifted=False", "--timeout", "1m"]).await.success();
    assert_eq!(server.get_json("/v1/sources/platform").await.expect("source")["lastRevision"], SHA_B);
}

/// Runs the build commands of `deploy/pipeline/buildspec.yaml` the way CodeBuild
/// does (one POSIX shell, the buildspec's variables under the project's), with
/// `mooring` on the PATH, against `server`.
async fn run_buildspec(stack: &Stack, server: &Server, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let text = std::fs::read_to_string(workspace_root().join("deploy/pipeline/buildspec.yaml")).expect("buildspec");
    let spec: serde_norway::Value = serde_norway::from_str(&text).expect("the buildspec is YAML");
    let commands: Vec<&str> = spec["phases"]["build"]["commands"]
        .as_sequence()
        .expect("phases.build.commands")
        .iter()
        .map(|c| c.as_str().expect("a command"))
        .collect();
    let bin_dir = mooring_bin().parent().expect("the binary's directory").display().to_string();
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-e").arg("-c").arg(commands.join("\n")).current_dir(&stack.dir);
    for (key, value) in spec["env"]["variables"].as_mapping().expect("env.variables") {
        cmd.env(key.as_str().expect("a name"), value.as_str().expect("a value"));
    }
    cmd.envs(stack.env())
        .env("PATH", format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()))
        .env("MOORING_SERVER", server.url(""))
        .env("MOORING_TOKEN", server.token())
        .env("MOORING_SYNC_SOURCE", "ci")
        .env("MOORING_DIR", "specs")
        .envs(env.iter().copied());
    let out = cmd.output().await.expect("sh runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_codebuild_buildspec_plans_and_syncs() {
    let stack = Stack::new("buildspec").await;
    let server = stack.server().start().await;
    stack.write("specs/gw.yaml", &relay_yaml("ci-gw", "default", IMAGE_1));

    // Plan mode: the plan is the log; exit 2 from the dry run is a successful plan.
    let (code, stdout, stderr) =
        run_buildspec(&stack, &server, &[("MOORING_MODE", "plan"), ("MOORING_REVISION", SHA_A)]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("+ relay.mooring/default/ci-gw will be created") && stdout.contains("exited 2"),
        "{stdout}"
    );
    assert!(read(&server, "relays", "ci-gw").await.is_none(), "a plan writes nothing");

    // Apply mode (the default), with the commit CodeBuild resolved.
    let (code, stdout, stderr) = run_buildspec(&stack, &server, &[("CODEBUILD_RESOLVED_SOURCE_VERSION", SHA_B)]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let gw = read(&server, "relays", "ci-gw").await.expect("synced");
    assert_eq!(gw["metadata"]["appliedRevision"], SHA_B, "{gw:#}");
    assert_eq!(gw["metadata"]["labels"]["mooring/source"], "ci", "{gw:#}");

    // An invalid document fails the build in either mode.
    stack.write("specs/bad.yaml", &relay_yaml("ci-bad", "default", IMAGE_1).replace("max: 8", "max: 1"));
    for mode in ["plan", "apply"] {
        let (code, stdout, stderr) =
            run_buildspec(&stack, &server, &[("MOORING_MODE", mode), ("MOORING_REVISION", SHA_C)]).await;
        assert_ne!(code, Some(0), "{mode}: {stdout}\n{stderr}");
        assert!(stderr.contains("bad.yaml document 1: spec.scaling.max"), "{mode}: {stderr}");
    }
}

/// Runs the `run:` steps of one job of `deploy/pipeline/github-actions.yaml` the
/// way a GitHub runner does (`bash -eo pipefail`, in the checkout, expressions
/// filled in), with a `docker` stand-in that runs the `mooring` binary with the
/// image's arguments (`/repo` mapped to the checkout). Returns the exit code of
/// the first failing step (or 0) and the job summary.
async fn run_workflow_job(stack: &Stack, server: &Server, job: &str, checkout: &Path) -> (i32, String) {
    let text = std::fs::read_to_string(workspace_root().join("deploy/pipeline/github-actions.yaml")).expect("workflow");
    let workflow: serde_norway::Value = serde_norway::from_str(&text).expect("the workflow is YAML");
    let shim_dir = stack.dir.join("shim");
    std::fs::create_dir_all(&shim_dir).expect("mkdir");
    let shim = shim_dir.join("docker");
    std::fs::write(
        &shim,
        "#!/usr/bin/env bash\n# docker stand-in: pull does nothing; run runs mooring with the image's arguments.\n\
         case \"$1\" in pull) exit 0 ;; run) shift ;; *) exit 3 ;; esac\n\
         while [ $# -gt 0 ]; do case \"$1\" in --rm) shift ;; -v|-e) shift 2 ;; *) break ;; esac; done\n\
         shift\nargs=()\nfor a in \"$@\"; do args+=(\"${a//\\/repo/$CHECKOUT}\"); done\nexec \"$MOORING\" \"${args[@]}\"\n",
    )
    .expect("write the shim");
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let summary = stack.dir.join(format!("summary-{job}.md"));
    let steps = workflow["jobs"][job]["steps"].as_sequence().expect("steps");
    for step in steps {
        let Some(script) = step["run"].as_str() else { continue };
        let script = script
            .replace("${{ vars.MOORING_IMAGE }}", "mooring:test")
            .replace("${{ github.event.pull_request.head.sha }}", SHA_A)
            .replace("${{ github.sha }}", SHA_B);
        assert!(!script.contains("${{"), "an expression the test does not fill in: {script}");
        let out = tokio::process::Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
            .current_dir(checkout)
            .envs(stack.env())
            .env("PATH", format!("{}:{}", shim_dir.display(), std::env::var("PATH").unwrap_or_default()))
            .env("MOORING", mooring_bin())
            .env("CHECKOUT", checkout)
            .env("MOORING_SERVER", server.url(""))
            .env("MOORING_TOKEN", server.token())
            .env("MOORING_SYNC_SOURCE", "gh")
            .env("SPECS_DIR", "specs")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .await
            .expect("bash runs");
        if !out.status.success() {
            let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            return (
                out.status.code().unwrap_or(-1),
                format!("{}{log}", std::fs::read_to_string(&summary).unwrap_or_default()),
            );
        }
    }
    (0, std::fs::read_to_string(&summary).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_workflow_plans_pull_requests_and_syncs_main() {
    let stack = Stack::new("workflow").await;
    let server = stack.server().start().await;
    let checkout = stack.dir.join("checkout");
    stack.write("checkout/specs/gw.yaml", &relay_yaml("gh-gw", "default", IMAGE_1));

    // A pull request: the plan in the summary, exit 2 is success, nothing written.
    let (code, summary) = run_workflow_job(&stack, &server, "plan", &checkout).await;
    assert_eq!(code, 0, "{summary}");
    assert!(
        summary.contains("exit 2") && summary.contains("+ relay.mooring/default/gh-gw will be created"),
        "{summary}"
    );
    assert!(read(&server, "relays", "gh-gw").await.is_none(), "a plan writes nothing");

    // main: the sync at the commit.
    let (code, summary) = run_workflow_job(&stack, &server, "sync", &checkout).await;
    assert_eq!(code, 0, "{summary}");
    assert!(summary.contains("Apply complete!"), "{summary}");
    let gw = read(&server, "relays", "gh-gw").await.expect("synced");
    assert_eq!(
        (gw["metadata"]["appliedRevision"].as_str(), gw["metadata"]["labels"]["mooring/source"].as_str()),
        (Some(SHA_B), Some("gh"))
    );

    // A pull request with an invalid document fails the check, naming it.
    stack.write("checkout/specs/bad.yaml", &relay_yaml("gh-bad", "default", IMAGE_1).replace("max: 8", "max: 1"));
    let (code, summary) = run_workflow_job(&stack, &server, "plan", &checkout).await;
    assert_ne!(code, 0, "{summary}");
    assert!(summary.contains("exit 1") && summary.contains("bad.yaml document 1: spec.scaling.max"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_render_and_lint_from_the_command_line() {
    let stack = Stack::new("chart_cli").await;
    for chart in ["rgb-lightning-node", "pulse-node", "integration-platform", "relay-gateway", "proton-beam"] {
        let dir = workspace_root().join("charts").join(chart);
        stack.run(&["chart", "lint", path(&dir)]).await.success().stdout_has("all valid");
    }
    let pulse = workspace_root().join("charts/pulse-node");
    let rendered = stack.run(&["chart", "render", path(&pulse), "--set", "replicas=4", "--set", "namespace=p2p"]).await;
    rendered.success();
    rendered.stdout_has("kind: NodeSet").stdout_has("replicas: 4");
    assert!(rendered.stdout.contains("namespace: p2p"), "{rendered}");
    // Values from a file, then a value the schema refuses.
    let values =
        stack.write("prod-values.yaml", "replicas: 1\nsoftware:\n  version: 9.9.9\n  artifact: s3://b/k.tar.gz\n");
    let one = stack.run(&["chart", "render", path(&pulse), "-f", path(&values)]).await;
    one.success().stdout_has("version: \"9.9.9\"");
    stack.run(&["chart", "render", path(&pulse), "--set", "replicas=0"]).await.code_is(1).stderr_has("values.replicas");

    // A chart whose template renders an invalid document fails lint, naming the
    // template, the document and the field.
    stack.write("broken/Chart.yaml", "name: broken\nversion: 0.1.0\n");
    stack.write("broken/values.yaml", "max: 1\n");
    let relay = relay_yaml("b", "default", IMAGE_1).replace("max: 8", "max: {{ values.max }}");
    stack.write("broken/templates/relay.yaml", &relay);
    let broken = stack.dir.join("broken");
    stack
        .run(&["chart", "lint", path(&broken)])
        .await
        .code_is(1)
        .stderr_has("templates/relay.yaml document 1: spec.scaling.max");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_over_the_request_limit_says_how_to_split_it() {
    let stack = Stack::new("sync_too_large").await;
    let server = stack.server().start().await;
    // More than 1 MiB of valid documents: nothing is written, and the error says what to do.
    let docs: Vec<String> = (0..4000).map(|i| worker_yaml(&format!("w{i}"), "bulk", IMAGE_1)).collect();
    stack.write("big/workers.yaml", &docs.join("---\n"));
    let big = stack.dir.join("big");
    server
        .cli(&["sync", "--dir", path(&big), "--revision", SHA_A, "--source", "bulk"])
        .await
        .code_is(1)
        .stderr_has("split the directory into several sources");
    let list = server.get_json("/v1/namespaces/bulk/workers").await.expect("list");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "nothing written");
}
