//! What a new user meets in the first hour, against a real server: `wait` that
//! refuses unknown conditions and stops on terminal failures, server addresses
//! that are explained, `-o name` / `-o jsonpath`, `history --revision`,
//! `version`, `explain`, shell completions and a `--help` that says what
//! Mooring is.

use tests::{Moto, Stack, relay_yaml, worker_yaml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IMAGE_1: &str = "public.ecr.aws/acme/gateway:2.1.0";
const IMAGE_2: &str = "public.ecr.aws/acme/gateway:2.2.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_hour_cli() {
    let stack = Stack::new("first_hour_cli").await;
    let server = stack.server().start().await;

    // What Mooring is, before any command.
    server.cli(&["--help"]).await.success().stdout_has("reconciling operator for AWS").stdout_has("explain");

    // A mistyped kind gets a suggestion.
    server.cli(&["get", "relya"]).await.code_is(1).stderr_has("(did you mean \"relay\"?)");

    // A condition no resource reports is refused at once, with the known ones.
    server.cli(&["wait", "relay", "gateway", "--for", "condition=Healthy"]).await.code_is(1).stderr_has(
        "unknown condition type \"Healthy\"; the known ones are Ready, Synced, Progressing, Degraded, Drifted",
    );

    let file = stack.write("gateway.yaml", &relay_yaml("gateway", "default", IMAGE_1));
    let file = file.to_str().expect("a UTF-8 path");
    server.cli(&["apply", "-f", file]).await.success();
    stack.write("gateway.yaml", &relay_yaml("gateway", "default", IMAGE_2));
    server.cli(&["apply", "-f", file]).await.success();

    // apply -n puts documents that name no namespace in it.
    let elsewhere =
        stack.write("elsewhere.yaml", &relay_yaml("gateway", "default", IMAGE_1).replace("  namespace: default\n", ""));
    server
        .cli(&["apply", "-n", "team-b", "-f", elsewhere.to_str().expect("a UTF-8 path")])
        .await
        .success()
        .stdout_has("relay.mooring/team-b/gateway created");
    server
        .cli(&["apply", "-n", "team-c", "-f", file])
        .await
        .code_is(1)
        .stderr_has("is in namespace \"default\", not \"team-c\"");
    server.cli(&["delete", "relay", "gateway", "-n", "team-b"]).await.success();

    // -o name and -o jsonpath, in kubectl's and RFC 9535's spelling.
    server.cli(&["get", "relays", "-o", "name"]).await.success().stdout_has("relay.mooring/gateway\n");
    let names = server.cli(&["get", "relays", "-o", "jsonpath={.items[*].metadata.name}"]).await;
    assert_eq!(names.success().stdout, "gateway\n");
    let max = server.cli(&["get", "relay", "gateway", "-o", "jsonpath=$.spec.scaling.max"]).await;
    assert_eq!(max.success().stdout, "8\n");
    server.cli(&["get", "relays", "-o", "jsonpath={.items[}"]).await.code_is(1).stderr_has("invalid JSONPath");

    // get all: every reconciled kind, names that say their kind.
    let worker = stack.write("worker.yaml", &worker_yaml("converter", "default", "ghcr.io/acme/proton-beam:0.9"));
    server.cli(&["apply", "-f", worker.to_str().expect("a UTF-8 path")]).await.success();
    server
        .cli(&["get", "all"])
        .await
        .success()
        .stdout_has("relay.mooring/gateway")
        .stdout_has("worker.mooring/converter");
    let names = server.cli(&["get", "all", "-o", "name"]).await;
    assert_eq!(names.success().stdout, "relay.mooring/gateway\nworker.mooring/converter\n");
    server.cli(&["get", "all", "-w"]).await.code_is(1).stderr_has("need one kind");

    // history --revision shows what a rollback would restore.
    server.cli(&["history", "relay", "gateway", "--revision", "1"]).await.success().stdout_has(IMAGE_1);
    server.cli(&["history", "relay", "gateway", "--revision", "2"]).await.success().stdout_has(IMAGE_2);
    server
        .cli(&["history", "relay", "gateway", "--revision", "1..2"])
        .await
        .success()
        .stdout_has("relay \"gateway\" from revision 1 to 2:\n")
        .stdout_has(&format!("~ spec.containers[0].image: \"{IMAGE_1}\" → \"{IMAGE_2}\""));
    server
        .cli(&["history", "relay", "gateway", "--revision", "9"])
        .await
        .code_is(1)
        .stderr_has("relay \"gateway\" has no revision 9; its revisions are 2, 1");

    // Client and server versions.
    let version = env!("CARGO_PKG_VERSION");
    server
        .cli(&["version"])
        .await
        .success()
        .stdout_has(&format!("Client Version: {version}\n"))
        .stdout_has(&format!("Server Version: {version} ("));

    // explain, from the schema; a mistyped field lists the real ones.
    server
        .cli(&["explain", "relay.spec.scaling.max"])
        .await
        .success()
        .stdout_has("FIELD:    spec.scaling.max <integer>")
        .stdout_has("default 10; 1..5000");
    server.cli(&["explain", "relay.spec.scalling"]).await.code_is(1).stderr_has("the fields of relay.spec are: ");

    // Completions for the usual shells.
    server.cli(&["completion", "bash"]).await.success().stdout_has("_mooring()");
    server.cli(&["completion", "zsh"]).await.success().stdout_has("#compdef mooring");
    server.cli(&["completion", "fish"]).await.success().stdout_has("complete -c mooring");

    // delete --wait says where the deletion stands, then that it is done.
    server
        .cli(&["delete", "relay", "gateway", "--wait", "--timeout", "2m"])
        .await
        .success()
        .stdout_has("relay \"gateway\" deleted\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_address_mistakes_are_explained() {
    let stack = Stack::new("server_address_mistakes").await;
    let server = stack.server().start().await;
    let addr = server.addr().to_string();

    // No scheme.
    server
        .cli(&["get", "relays", "--server", &addr])
        .await
        .code_is(1)
        .stderr_has(&format!("has no scheme; did you mean http://{addr}?"));

    // TLS to the plain-HTTP server.
    server
        .cli(&["get", "relays", "--server", &format!("https://{addr}")])
        .await
        .code_is(1)
        .stderr_has(&format!("does not speak TLS (it answered in plain HTTP); use http://{addr}"));

    // Something that answers 404 in plain text is not a Mooring server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let other = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot found")
                .await;
        }
    });
    server
        .cli(&["get", "relays", "--server", &format!("http://{other}")])
        .await
        .code_is(1)
        .stderr_has("answered 404 to /v1/namespaces/default/relays")
        .stderr_has("it does not look like a Mooring server");
}

/// On moto, a worker whose queue name is taken by someone else's queue is
/// `Synced=False/Conflict`: `wait` says so and exits 1 instead of waiting out
/// its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_stops_on_a_terminal_failure() {
    let moto = Moto::connect().await;
    moto.ensure_cluster("batch").await;
    let stack = Stack::new("wait_terminal_failure").await;
    let server = stack.server().on_moto(&moto).start().await;
    let ns = format!("wait-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let queue = format!("{ns}_converter");
    let sqs = aws_sdk_sqs::Client::new(moto.sdk());
    sqs.create_queue().queue_name(&queue).send().await.expect("someone else's queue");

    let file = stack.write("worker.yaml", &worker_yaml("converter", &ns, "ghcr.io/acme/proton-beam:0.9"));
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    server
        .cli(&["wait", "worker", "converter", "-n", &ns, "--for", "condition=Ready", "--timeout", "3m"])
        .await
        .code_is(1)
        .stderr_has(&format!("worker.mooring/{ns}/converter will not become Ready=True until something changes"))
        .stderr_has("Synced=False (Conflict)")
        .stderr_has("mooring/adopt");

    // A sync wave stops on the same failure, before the next wave is written.
    let queue = format!("{ns}_waved");
    sqs.create_queue().queue_name(&queue).send().await.expect("someone else's queue");
    let waved = worker_yaml("waved", &ns, "ghcr.io/acme/proton-beam:0.9").replacen(
        "metadata:\n",
        "metadata:\n  annotations:\n    mooring/sync-wave: \"-1\"\n",
        1,
    );
    stack.write("waves/1-worker.yaml", &waved);
    stack.write("waves/2-relay.yaml", &tests::relay_yaml("after", &ns, "public.ecr.aws/acme/gateway:2.1.0"));
    let dir = stack.dir.join("waves");
    let revision = "aaaaaaa1111111111111111111111111111111aa";
    server
        .cli(&["sync", "--dir", dir.to_str().expect("a UTF-8 path"), "--revision", revision, "--source", "waves"])
        .await
        .code_is(1)
        .stderr_has("wave -1 cannot become Ready")
        .stderr_has("Synced=False (Conflict)");
    let after = server.get_json(&format!("/v1/namespaces/{ns}/relays/after")).await;
    assert!(after.is_err(), "the next wave must not be written: {after:?}");
}

/// `get -w` prints the list, then a row each time a resource changes, read
/// from the API's change stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_changes() {
    let stack = Stack::new("get_watch").await;
    let server = stack.server().start().await;
    let first = stack.write("first.yaml", &relay_yaml("first", "default", IMAGE_1));
    server.cli(&["apply", "-f", first.to_str().expect("a UTF-8 path")]).await.success();

    let (mut watcher, mut lines) = server.cli_lines(&["get", "relays", "-w", "-o", "name"]);
    let mut next_line =
        async || tokio::time::timeout(tests::WAIT, lines.next_line()).await.expect("a line from get -w").expect("read");
    assert_eq!(next_line().await.as_deref(), Some("relay.mooring/first"), "the list comes first");

    let second = stack.write("second.yaml", &relay_yaml("second", "default", IMAGE_1));
    server.cli(&["apply", "-f", second.to_str().expect("a UTF-8 path")]).await.success();
    assert_eq!(next_line().await.as_deref(), Some("relay.mooring/second"), "then each change");

    server.cli(&["delete", "relay", "second", "--wait", "--timeout", "2m"]).await.success();
    loop {
        match next_line().await.as_deref() {
            Some("second deleted") => break,
            Some(line) => assert!(line.starts_with("relay.mooring/"), "unexpected line {line:?}"),
            None => panic!("get -w ended before the deletion was shown"),
        }
    }
    watcher.kill().await.expect("stop get -w");
}

/// `edit` opens the document in `$EDITOR` (here a scripted `sed`) and writes
/// the result back with the resourceVersion it read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_with_a_scripted_editor() {
    let stack = Stack::new("edit_scripted").await;
    let server = stack.server().start().await;
    let file = stack.write("gateway.yaml", &relay_yaml("gateway", "default", IMAGE_1));
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    // Settled first: the controller's status writes move the resourceVersion
    // `edit` reads, and a write in between is (rightly) a conflict.
    server.cli(&["wait", "relay", "gateway", "--for", "condition=Ready", "--timeout", "60s"]).await.success();
    let client = [("MOORING_SERVER", server.url("")), ("MOORING_TOKEN", server.token().to_string())];
    let env = |editor: &'static str| {
        let mut vars: Vec<(&str, &str)> = client.iter().map(|(k, v)| (*k, v.as_str())).collect();
        vars.push(("EDITOR", editor));
        vars
    };

    // An editor that changes nothing: nothing is written.
    stack.run_with(&env("true"), &["edit", "relay", "gateway"]).await.success().stdout_has("Edit cancelled");

    // A new image.
    stack
        .run_with(&env("sed -i s/gateway:2.1.0/gateway:2.2.0/"), &["edit", "relay", "gateway"])
        .await
        .success()
        .stdout_has("relay.mooring/default/gateway edited (generation 2)");
    let image = server.cli(&["get", "relay", "gateway", "-o", "jsonpath={.spec.containers[0].image}"]).await;
    assert_eq!(image.success().stdout, format!("{IMAGE_2}\n"));

    // An edit the server refuses keeps the file and says where it is.
    stack
        .run_with(&env("sed -i s/cpu:\\ 512/cpu:\\ 3/"), &["edit", "relay", "gateway"])
        .await
        .code_is(1)
        .stderr_has("spec.cpu")
        .stderr_has("your edit is kept in");
}

/// Every document of the demo: (kind, name, namespace) of what the charts in
/// `charts/` render with their default values.
const DEMO_DOCUMENTS: [(&str, &str, &str); 10] = [
    ("relay", "gateway", "default"),
    ("relay", "integration-service", "integrations"),
    ("relay", "webhook-receiver", "integrations"),
    ("worker", "integration-worker", "integrations"),
    ("worker", "converter", "batch"),
    // The set first: its members exist once it is Ready.
    ("nodeset", "pulse", "chain"),
    ("node", "pulse-0", "chain"),
    ("node", "pulse-1", "chain"),
    ("node", "rln-alice", "rgb"),
    ("node", "rln-bob", "rgb"),
];

/// The commit the demo's charts are synced at in these tests.
const DEMO_REVISION: &str = "de705de705de705de705de705de705de705de705";

/// Stands in for the nodes' software on loopback (moto's instances run nothing
/// and are not reachable; the server checks health here with
/// `--node-health-host 127.0.0.1`): 200 to every request. Returns the port.
async fn serve_healthy() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = listener.local_addr().expect("an address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
            });
        }
    });
    port
}

/// Runs one of the demo's scripts (`scripts/NAME`) with `args` and `env`; panics
/// with its stderr when it fails.
fn run_script(name: &str, args: &[&str], env: &[(&str, &str)]) {
    let out = std::process::Command::new(tests::workspace_root().join("scripts").join(name))
        .args(args)
        .envs(env.iter().copied())
        .env("MOORING", tests::mooring_bin())
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{name}: {e}"));
    assert!(out.status.success(), "scripts/{name} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// The demo on moto, as `MOORING_CLOUD=aws make run` runs it: `scripts/moto-demo.sh`
/// creates what the charts name (clusters, roles, secrets, target groups; the
/// default VPC's subnet and security group) and writes values files with moto's
/// identifiers, `scripts/render-charts.sh` renders every chart with them, and
/// `mooring sync` applies the result. From an empty database every document
/// reaches `Synced=True`, and the nodes (built locally by `mooring-provisioner`,
/// their health port served by this test on 127.0.0.1) reach `Ready=True`, as
/// does the converter (a worker at zero replicas wants no task). The other
/// relays and workers are not asserted Ready: moto starts no ECS tasks, so their
/// services never have a running task there (their readiness is tested on the
/// simulated cloud, `the_demo_charts_become_ready_on_the_simulated_cloud`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_sync_on_moto() {
    let moto = Moto::connect().await;
    let stack = Stack::new("examples_on_moto").await;
    let port = serve_healthy().await.to_string();
    let values = stack.dir.join("demo/values");
    let specs = stack.dir.join("demo/charts");
    let (values, specs) = (values.to_str().expect("a UTF-8 path"), specs.to_str().expect("a UTF-8 path"));
    run_script(
        "moto-demo.sh",
        &[values],
        &[("MOORING_AWS_ENDPOINT", moto.endpoint.as_str()), ("MOORING_DEMO_NODE_PORT", port.as_str())],
    );
    // A namespace of its own, so earlier runs' services and queues in moto are not this run's.
    let ns = format!("demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    run_script("render-charts.sh", &[specs, values, "--set", &format!("namespace={ns}")], &[]);
    for entry in std::fs::read_dir(specs).expect("the rendered charts") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("a rendered chart");
        for placeholder in ["0a1b2c3d", "AbCdEf", "/0123456789abcdef"] {
            assert!(!text.contains(placeholder), "a placeholder identifier is left in {}:\n{text}", path.display());
        }
    }
    let server = stack
        .server()
        .env("MOORING_CLOUD", "aws")
        .env("MOORING_AWS_ENDPOINT", &moto.endpoint)
        .env("MOORING_NODE_BUILDS", "local")
        .env("MOORING_NODE_HEALTH_HOST", "127.0.0.1")
        .env("MOORING_POLL_SECONDS", "1")
        .start()
        .await;
    server
        .cli(&["sync", "--dir", specs, "--revision", DEMO_REVISION, "--source", "demo"])
        .await
        .success()
        .stdout_has("Plan: 8 to add")
        .stdout_has("Apply complete!");
    for (kind, name, _) in DEMO_DOCUMENTS {
        // A worker that scales to zero wants no task, so it is Ready even on moto.
        let ready = kind.starts_with("node") || name == "converter";
        let condition = if ready { "condition=Ready" } else { "condition=Synced" };
        server
            .cli(&["wait", kind, name, "-n", &ns, "--for", condition, "--timeout", "3m"])
            .await
            .success()
            .stdout_has("condition met");
    }
    server
        .cli(&["sync", "--dir", specs, "--revision", DEMO_REVISION, "--source", "demo"])
        .await
        .success()
        .stdout_has("No changes");

    // The set's members are in its private zone, each at its own address,
    // and the set's name answers with both.
    let pulse_values: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{values}/pulse-node.yaml")).expect("pulse values"))
            .expect("JSON values");
    let zone = pulse_values["discovery"]["privateZoneId"].as_str().expect("a zone").to_string();
    let domain = pulse_values["discovery"]["domain"].as_str().expect("a domain").to_string();
    let dns = moto.node_cloud().dns;
    let mut want = std::collections::BTreeMap::new();
    for member in ["pulse-0", "pulse-1"] {
        let node = server.get_json(&format!("/v1/namespaces/{ns}/nodes/{member}")).await.expect("a member");
        let ip = node["status"]["privateIp"].as_str().expect("a private IP").to_string();
        assert_eq!(
            node["spec"]["env"]["MOORING_PEERS"],
            format!("pulse-0.{domain},pulse-1.{domain}"),
            "the peers are in the member's environment"
        );
        want.insert(format!("{member}.{domain}"), vec![ip]);
    }
    let mut all: Vec<String> = want.values().flatten().cloned().collect();
    all.sort();
    want.insert(domain.clone(), all);
    let deadline = tokio::time::Instant::now() + tests::WAIT;
    loop {
        let records = runners::workload::discovery::records_under(dns.as_ref(), &zone, &domain).await.expect("records");
        let got: std::collections::BTreeMap<String, Vec<String>> = records
            .into_iter()
            .filter(|r| r.kind == runners::cloud::dns::RecordType::A)
            .map(|r| (r.name, r.values))
            .collect();
        if got == want {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the set's records in moto: {got:?}, want {want:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A node's build log (a local build here) is plain text: no colour codes.
    let node = server.get_json(&format!("/v1/namespaces/{ns}/nodes/pulse-0")).await.expect("the node");
    let log = node["status"]["build"]["logs"].as_str().expect("the build's log").to_string();
    let text = std::fs::read_to_string(&log).expect("the build log");
    assert!(!text.trim().is_empty(), "the build log {log} is empty");
    assert!(!text.contains('\u{1b}'), "colour codes in the build log {log}:\n{text}");
}

/// The demo on the simulated cloud, as `make run` runs it: every chart rendered
/// with its default values by `scripts/render-charts.sh` and applied by
/// `mooring sync`; from an empty database every document becomes `Ready`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_charts_become_ready_on_the_simulated_cloud() {
    let stack = Stack::new("demo_on_sim").await;
    let specs = stack.dir.join("demo/charts");
    let specs = specs.to_str().expect("a UTF-8 path");
    run_script("render-charts.sh", &[specs], &[]);
    let server = stack.server().env("MOORING_SIM_CLUSTERS", "default,prod,batch,integrations").start().await;
    server
        .cli(&["sync", "--dir", specs, "--revision", DEMO_REVISION, "--source", "demo"])
        .await
        .success()
        .stdout_has("Plan: 8 to add");
    for (kind, name, ns) in DEMO_DOCUMENTS {
        server
            .cli(&["wait", kind, name, "-n", ns, "--for", "condition=Ready", "--timeout", "3m"])
            .await
            .success()
            .stdout_has("condition met");
    }
}

/// A cluster that does not exist is named, with what to do, and `wait` stops on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_cluster_is_named() {
    let moto = Moto::connect().await;
    let stack = Stack::new("missing_cluster").await;
    let server = stack.server().on_moto(&moto).start().await;
    let ns = format!("nocl-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let cluster = format!("gone-{ns}");
    let yaml = worker_yaml("converter", &ns, "ghcr.io/acme/proton-beam:0.9")
        .replace("cluster: batch", &format!("cluster: {cluster}"));
    assert!(yaml.contains(&cluster), "the worker names the cluster");
    let file = stack.write("worker.yaml", &yaml);
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    server
        .cli(&["wait", "worker", "converter", "-n", &ns, "--for", "condition=Ready", "--timeout", "3m"])
        .await
        .code_is(1)
        .stderr_has("Synced=False (InvalidReference)")
        .stderr_has(&format!("cluster \"{cluster}\" does not exist; Mooring uses existing ECS clusters"));
}
