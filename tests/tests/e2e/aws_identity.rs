//! The right account and region, always: `mooring serve` takes its region from
//! the standard chain (here a profile file), `--aws-region` overrides it, it
//! says at start-up and in `/readyz` which account and region it acts in, and
//! its facades really act there (a worker's queue and service land in the
//! profile's region in moto). Without any region it refuses to start.

use serde_json::Value;
use tests::{Moto, Server, Stack, WAIT, condition, eventually, worker_yaml};

/// Writes an AWS config and credentials file with a `prod` profile in `region`.
fn profile_files(stack: &Stack, region: &str) -> (String, String) {
    let config = stack.write("aws/config", &format!("[profile prod]\nregion = {region}\noutput = json\n"));
    let credentials =
        stack.write("aws/credentials", "[prod]\naws_access_key_id = testing\naws_secret_access_key = testing\n");
    (config.display().to_string(), credentials.display().to_string())
}

/// A server on moto with the `prod` profile and no region in its environment.
fn profile_server<'a>(stack: &'a Stack, moto: &Moto, config: &str, credentials: &str) -> tests::ServerBuilder<'a> {
    stack
        .server()
        .on_moto(moto)
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
        .env("AWS_PROFILE", "prod")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
}

async fn readyz(server: &Server) -> Value {
    let resp = server.http(reqwest::Method::GET, "/readyz").send().await.expect("/readyz answers");
    resp.json().await.expect("/readyz is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_region_comes_from_the_profile_and_the_flag_overrides_it() {
    let moto = Moto::connect().await;
    let stack = Stack::new("region_from_profile").await;
    let (config, credentials) = profile_files(&stack, "eu-west-1");
    let eu = moto.in_region("eu-west-1").await;
    eu.ensure_cluster("batch").await;

    let server = profile_server(&stack, &moto, &config, &credentials).start().await;
    let ready = readyz(&server).await;
    assert_eq!(ready["aws"]["region"], "eu-west-1", "{ready:#}");
    assert_eq!(ready["aws"]["account"], "123456789012", "moto's account: {ready:#}");
    assert!(ready["aws"]["principal"].as_str().is_some_and(|p| p.starts_with("arn:aws:")), "{ready:#}");
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("AWS identity") && l.contains("eu-west-1") && l.contains("123456789012")),
        "the start-up log names the account and region:\n{log}"
    );

    // The facades act in that region: the worker's queue and service are in eu-west-1.
    let ns = format!("region-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let file = stack.write("worker.yaml", &worker_yaml("converter", &ns, "ghcr.io/acme/proton-beam:0.9"));
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    let worker = eventually("the worker Synced", WAIT, async || {
        let r = server.get_json(&format!("/v1/namespaces/{ns}/workers/converter")).await?;
        let c = condition(&r, "Synced").cloned().unwrap_or(Value::Null);
        if c["status"] == "True" { Ok(r) } else { Err(format!("{c}")) }
    })
    .await;
    let service_arn = worker["status"]["service"]["arn"].as_str().expect("service.arn in status").to_string();
    assert!(service_arn.starts_with("arn:aws:ecs:eu-west-1:"), "{service_arn}");
    let queue = format!("{ns}_converter");
    assert!(eu.cloud.queues.queue_url(&queue).await.expect("moto answers").is_some(), "queue in eu-west-1");
    assert!(moto.cloud.queues.queue_url(&queue).await.expect("moto answers").is_none(), "no queue in us-east-1");
    server.cli(&["delete", "worker", "converter", "-n", &ns, "--wait", "--timeout", "60s"]).await.success();

    // The flag wins over the profile.
    let flagged =
        profile_server(&stack, &moto, &config, &credentials).env("MOORING_AWS_REGION", "ap-southeast-2").start().await;
    assert_eq!(readyz(&flagged).await["aws"]["region"], "ap-southeast-2");

    // AWS_DEFAULT_REGION is part of the chain too (and wins over the profile).
    let default_region =
        profile_server(&stack, &moto, &config, &credentials).env("AWS_DEFAULT_REGION", "eu-central-1").start().await;
    assert_eq!(readyz(&default_region).await["aws"]["region"], "eu-central-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_region_serve_refuses_to_start_and_says_how_to_fix_it() {
    if std::env::var_os("AWS_REGION").is_some() || std::env::var_os("AWS_DEFAULT_REGION").is_some() {
        eprintln!("skipped: AWS_REGION or AWS_DEFAULT_REGION is set in the test environment");
        return;
    }
    let stack = Stack::new("no_region").await;
    let out = stack
        .run_with(
            &[
                ("MOORING_CLOUD", "aws"),
                ("AWS_CONFIG_FILE", "/nonexistent/config"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
                // Outside AWS there is no metadata service to ask.
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("MOORING_LISTEN", "127.0.0.1:0"),
            ],
            &["serve"],
        )
        .await;
    out.failure();
    assert!(out.stderr.contains("no AWS region") && out.stderr.contains("--aws-region"), "{out}");
}
