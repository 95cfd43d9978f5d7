//! Chaos on real processes (issue 19, item 2): three `mooring serve` replicas
//! (API and controller each) on moto, a Postgres and a Redis of the test's own,
//! and a rollout of 200 workers while a script SIGKILLs replicas, restarts
//! Redis and restarts Postgres. Afterwards moto holds exactly what the specs
//! describe; then everything is deleted, under chaos again, and moto holds
//! nothing of it.
//!
//! Decisions:
//! - **Private services.** Postgres and Redis are child processes of the test
//!   on spare ports (`tests::PrivatePostgres`, `tests::PrivateRedis`), never
//!   the machine's shared ones: `initdb` into the scratch directory (as the
//!   `postgres` user when the tests run as root), `redis-server` without
//!   persistence. A Postgres "restart" is a crash (SIGKILL of the postmaster
//!   and its backends: the next start replays the WAL) or, every other time,
//!   a fast shutdown; a Redis restart loses every key (leases, fencing
//!   counter, AWS budgets), as a cache node replaced without persistence does.
//! - **moto is shared** (it is the local AWS endpoint), so the run has its own
//!   ECS cluster and namespace (`chaos-<random>`), and every check lists what
//!   moto has under those names: services in the cluster, queues with the
//!   namespace's prefix, task definitions of the workers' families.
//! - **200 workers, no relays.** A worker owns a queue, a dead-letter queue, a
//!   task definition and a service, and one that scales to zero becomes
//!   `Ready` on moto (which never starts tasks); a relay would stay
//!   `Progressing` there forever. Half the fleet gets a new image while the
//!   chaos runs, so it is a rollout and not only creates.
//! - **Deterministic schedule**, in rounds: SIGKILL one replica (in turn),
//!   start it again; crash Redis, start it again; crash (or stop) Postgres,
//!   start it again; a couple of seconds between steps. Each step ends with
//!   what it broke running again (a replica cannot start without Postgres), so
//!   the chaos never stacks outages. During the rollout it runs at least three
//!   rounds, and one more after the image update is written; during the
//!   deletion at least two, and one more after every delete is requested.
//! - **Writes go to whichever replica answers**: requests that fail to
//!   connect or answer 5xx/429 are retried on the next replica (`/v1/apply` is
//!   idempotent, a repeated DELETE answers 202 or 404). A 5xx other than 503
//!   is remembered and reported (the store being down is a 503).
//! - **Short leases** (3 s) and 12 shards, so a killed replica's shards move
//!   quickly; AWS budgets raised for moto (the defaults, half of AWS's
//!   buckets, allow 0.5 task definitions a second: 400 s for 200 workers).
//! - No timing asserts: every wait is bounded and generous; progress and the
//!   phases' durations are printed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Moto, PrivatePostgres, PrivateRedis, Server, Stack, condition, eventually, worker_json};
use tokio::sync::watch;
use tokio::time::Instant;

const WORKERS: usize = 200;
/// Workers `0..UPDATED` get the new image mid-chaos.
const UPDATED: usize = 100;
const IMAGE_V1: &str = "ghcr.io/acme/proton-beam:1.0";
const IMAGE_V2: &str = "ghcr.io/acme/proton-beam:1.1";
const BATCH: usize = 20;
/// How long the fleet may take to converge once the chaos stopped.
const CONVERGE: Duration = Duration::from_secs(300);
/// How long one API request may be retried (a Postgres restart, every replica down).
const REQUEST_RETRY: Duration = Duration::from_secs(120);

fn worker_name(i: usize) -> String {
    format!("w-{i:03}")
}

fn image_of(i: usize, updated: bool) -> &'static str {
    if updated && i < UPDATED { IMAGE_V2 } else { IMAGE_V1 }
}

/// The replicas' API as one: each request goes to the next replica, and is
/// retried on another while none answers it properly.
struct Fleet {
    urls: Arc<Mutex<Vec<String>>>,
    token: String,
    http: reqwest::Client,
    next: std::sync::atomic::AtomicUsize,
    /// 5xx answers other than 503 (the store unavailable): a bug to report.
    server_errors: Mutex<Vec<String>>,
    /// Retried attempts by cause (`503`, `429`, `transport`), printed at the end.
    retried: Mutex<BTreeMap<String, usize>>,
}

impl Fleet {
    fn url(&self) -> String {
        let urls = self.urls.lock().expect("urls");
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        urls[n % urls.len()].clone()
    }

    /// One attempt at one replica: the status and the body as JSON (or text).
    async fn try_once(&self, method: &Method, path: &str, body: Option<&Value>) -> Result<(StatusCode, Value), String> {
        let url = self.url();
        let mut req = self.http.request(method.clone(), format!("{url}{path}")).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("{url}: reading the body: {e}"))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// Sends until a replica answers something other than a transport error,
    /// 5xx or 429 (bounded by [`REQUEST_RETRY`]).
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let deadline = Instant::now() + REQUEST_RETRY;
        loop {
            let last = match self.try_once(&method, path, body).await {
                Ok((status, body)) if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) => {
                    return (status, body);
                }
                Ok((status, body)) => {
                    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
                        self.server_errors.lock().expect("errors").push(format!("{method} {path}: {status}: {body}"));
                    }
                    *self.retried.lock().expect("retried").entry(status.as_u16().to_string()).or_default() += 1;
                    format!("{status}: {body}")
                }
                Err(e) => {
                    *self.retried.lock().expect("retried").entry("transport".into()).or_default() += 1;
                    e
                }
            };
            assert!(
                Instant::now() < deadline,
                "{method} {path}: no replica answered within {REQUEST_RETRY:?}; last: {last}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Applies documents (`POST /v1/apply`, idempotent).
    async fn apply(&self, docs: &[Value]) {
        let (status, body) = self.send(Method::POST, "/v1/apply", Some(&Value::Array(docs.to_vec()))).await;
        assert_eq!(status, StatusCode::OK, "apply: {body}");
    }

    /// Every worker of the namespace (one attempt; `Err` while no replica answers).
    async fn workers(&self, ns: &str) -> Result<Vec<Value>, String> {
        let path = format!("/v1/namespaces/{ns}/workers?limit=1000");
        let (status, body) = self.try_once(&Method::GET, &path, None).await?;
        if status != StatusCode::OK {
            return Err(format!("GET {path}: {status}: {body}"));
        }
        body["items"].as_array().cloned().ok_or_else(|| format!("GET {path}: no items: {body}"))
    }
}

/// What the chaos script breaks and mends. Dropped in field order: the
/// replicas, then the stack (its database and Redis keys), then the services.
struct World {
    replicas: Vec<Server>,
    /// Held only to be dropped after the replicas.
    _stack: Stack,
    redis: PrivateRedis,
    postgres: PrivatePostgres,
    urls: Arc<Mutex<Vec<String>>>,
    /// Completed rounds (over every run of the script).
    rounds: usize,
}

/// Runs rounds of the schedule, at least `min_rounds` and one whole round
/// after `stop` turned true (so what was written just before the signal is
/// reconciled under chaos too), then hands the world back with everything
/// running.
async fn chaos(mut world: World, min_rounds: usize, stop: watch::Receiver<bool>, started: Instant) -> World {
    let pause = Duration::from_millis(2000);
    let down = Duration::from_millis(1000);
    let say = |what: String| eprintln!("[chaos {:>6.1}s] {what}", started.elapsed().as_secs_f64());
    let mut last: Option<usize> = None;
    for done in 0.. {
        if last.is_none() && *stop.borrow() {
            last = Some(done + 1);
        }
        if done >= min_rounds && last.is_some_and(|last| done >= last) {
            break;
        }
        let round = world.rounds;
        let r = round % world.replicas.len();
        let replica = &mut world.replicas[r];
        say(format!("round {round}: SIGKILL {}", replica.name));
        replica.kill();
        tokio::time::sleep(down).await;
        replica.restart().await;
        let addr = format!("http://{}", replica.addr());
        world.urls.lock().expect("urls")[r] = addr;
        say(format!("round {round}: {} is back", replica.name));
        tokio::time::sleep(pause).await;

        say(format!("round {round}: Redis crashes"));
        world.redis.crash();
        tokio::time::sleep(down).await;
        world.redis.start_again().await;
        say(format!("round {round}: Redis is back (empty)"));
        tokio::time::sleep(pause).await;

        if round.is_multiple_of(2) {
            say(format!("round {round}: Postgres crashes (SIGKILL of every process)"));
            world.postgres.crash();
        } else {
            say(format!("round {round}: Postgres stops (fast shutdown)"));
            world.postgres.stop().await;
        }
        tokio::time::sleep(down).await;
        world.postgres.start_again().await;
        say(format!("round {round}: Postgres is back"));
        tokio::time::sleep(pause).await;
        world.rounds += 1;
    }
    world
}

/// Waits until every worker of `expected` (name → image) is `Synced` and
/// `Ready` at its generation with that image, printing progress.
async fn wait_converged(fleet: &Fleet, ns: &str, expected: &BTreeMap<String, &str>) -> Vec<Value> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    eventually(&format!("{} workers Synced and Ready", expected.len()), CONVERGE, async || {
        let items = fleet.workers(ns).await?;
        let mut pending = Vec::new();
        for (name, image) in expected {
            let Some(w) = items.iter().find(|w| w["metadata"]["name"] == name.as_str()) else {
                pending.push(format!("{name}: missing"));
                continue;
            };
            let generation = &w["metadata"]["generation"];
            let at_generation =
                |c: Option<&Value>| c.is_some_and(|c| c["status"] == "True" && &c["observedGeneration"] == generation);
            let show = |type_: &str| match condition(w, type_) {
                Some(c) => format!(
                    "{type_}={} {} at generation {}: {}",
                    c["status"], c["reason"], c["observedGeneration"], c["message"]
                ),
                None => format!("no {type_}"),
            };
            if w["spec"]["container"]["image"] != *image {
                pending.push(format!("{name}: spec image {}", w["spec"]["container"]["image"]));
            } else if !at_generation(condition(w, "Synced")) {
                pending.push(format!("{name} (generation {generation}): {}", show("Synced")));
            } else if !at_generation(condition(w, "Ready")) {
                pending.push(format!("{name} (generation {generation}): {}", show("Ready")));
            }
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "[converge {:>5.1}s] {} of {} not converged; e.g. {:?}",
                started.elapsed().as_secs_f64(),
                pending.len(),
                expected.len(),
                pending.iter().take(3).collect::<Vec<_>>()
            );
        }
        if pending.is_empty() {
            Ok(items)
        } else {
            Err(format!("{} not converged, first: {:?}", pending.len(), pending.iter().take(5).collect::<Vec<_>>()))
        }
    })
    .await
}

/// Every service moto lists in `cluster`, described (all states).
async fn services_in(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Vec<aws_sdk_ecs::types::Service> {
    let mut arns = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = ecs
            .list_services()
            .cluster(cluster)
            .set_next_token(next.take())
            .max_results(100)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListServices {cluster}: {e:?}"));
        arns.extend(out.service_arns().iter().cloned());
        match out.next_token {
            Some(t) if !t.is_empty() => next = Some(t),
            _ => break,
        }
    }
    let mut services = Vec::new();
    for chunk in arns.chunks(10) {
        let out = ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeServices {cluster}: {e:?}"));
        services.extend(out.services().iter().cloned());
    }
    services
}

/// Every queue URL moto has whose name starts with `prefix`.
async fn queues_with_prefix(sqs: &aws_sdk_sqs::Client, prefix: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = sqs
            .list_queues()
            .queue_name_prefix(prefix)
            .max_results(1000)
            .set_next_token(next.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListQueues {prefix}: {e:?}"));
        urls.extend(out.queue_urls().iter().cloned());
        match out.next_token {
            Some(t) if !t.is_empty() => next = Some(t),
            _ => break,
        }
    }
    urls
}

fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// The image of the `convert` container of a task definition.
async fn image_of_task_definition(ecs: &aws_sdk_ecs::Client, arn: &str) -> String {
    let out = ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeTaskDefinition {arn}: {e:?}"));
    let td = out.task_definition().unwrap_or_else(|| panic!("{arn}: no task definition"));
    td.container_definitions()
        .iter()
        .find(|c| c.name() == Some("convert"))
        .and_then(|c| c.image())
        .unwrap_or_else(|| panic!("{arn}: no convert container"))
        .to_string()
}

/// moto holds exactly what the specs describe: one ACTIVE service per worker
/// (no other, no duplicate), on a task definition with the spec's image,
/// tagged with the worker's uid and recorded in its status; no revision
/// registered twice; the queue and dead-letter queue of each worker, tagged,
/// with the redrive policy, and no other queue.
async fn check_moto_matches(moto: &Moto, cluster: &str, ns: &str, workers: &[Value]) {
    let ecs = aws_sdk_ecs::Client::new(moto.sdk());
    let sqs = aws_sdk_sqs::Client::new(moto.sdk());
    let by_name: BTreeMap<String, &Value> =
        workers.iter().map(|w| (format!("{ns}_{}", w["metadata"]["name"].as_str().unwrap_or_default()), w)).collect();
    assert_eq!(by_name.len(), WORKERS, "workers listed by the API");

    // ECS services.
    let services = services_in(&ecs, cluster).await;
    let active: Vec<_> = services.iter().filter(|s| s.status() == Some("ACTIVE")).collect();
    let states: BTreeMap<&str, usize> = services.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.status().unwrap_or("?")).or_default() += 1;
        m
    });
    eprintln!("[check] moto lists {} services in {cluster}: {states:?}", services.len());
    let mut seen = BTreeSet::new();
    for s in &active {
        let name = s.service_name().unwrap_or_default();
        assert!(seen.insert(name.to_string()), "two ACTIVE services named {name} in {cluster}");
        assert!(by_name.contains_key(name), "an ACTIVE service {name} that no worker describes");
    }
    assert_eq!(active.len(), WORKERS, "ACTIVE services in {cluster} ({states:?})");
    let mut families_checked = 0;
    for (name, w) in &by_name {
        let s = active
            .iter()
            .find(|s| s.service_name() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("no ACTIVE service {name}"));
        let uid = w["metadata"]["uid"].as_str().expect("uid");
        let tag = s.tags().iter().find(|t| t.key() == Some("mooring:uid")).and_then(|t| t.value());
        assert_eq!(tag, Some(uid), "{name}: mooring:uid tag of the service");
        assert_eq!(w["status"]["service"]["arn"].as_str(), s.service_arn(), "{name}: status.service.arn");
        let td = s.task_definition().unwrap_or_else(|| panic!("{name}: no task definition"));
        assert_eq!(w["status"]["taskDefinitionArn"].as_str(), Some(td), "{name}: status.taskDefinitionArn");
        let want = w["spec"]["container"]["image"].as_str().expect("spec image");
        assert_eq!(image_of_task_definition(&ecs, td).await, want, "{name}: image of the service's task definition");
        assert_eq!(s.desired_count(), 0, "{name}: scaled to zero (an empty queue)");

        // Task definitions: no revision registered twice (a crash between
        // registering and recording finds the revision by its hash).
        let revisions = moto.cloud.ecs.list_task_definitions(name).await.expect("ListTaskDefinitions");
        let mut images = BTreeSet::new();
        for arn in &revisions {
            let image = image_of_task_definition(&ecs, arn).await;
            assert!(images.insert(image.clone()), "{name}: two ACTIVE revisions with image {image}: {revisions:?}");
        }
        let updated = want == IMAGE_V2;
        assert!(
            if updated { (1..=2).contains(&revisions.len()) } else { revisions.len() == 1 },
            "{name}: ACTIVE revisions {revisions:?} (images {images:?})"
        );
        families_checked += 1;
    }

    // SQS queues: exactly a queue and a dead-letter queue per worker.
    let urls = queues_with_prefix(&sqs, &format!("{ns}_")).await;
    let names: BTreeSet<String> = urls.iter().map(|u| queue_name(u).to_string()).collect();
    let want: BTreeSet<String> = by_name.keys().flat_map(|n| [n.clone(), format!("{n}-dlq")]).collect();
    assert_eq!(urls.len(), names.len(), "a queue listed twice: {urls:?}");
    let extra: Vec<_> = names.difference(&want).collect();
    let missing: Vec<_> = want.difference(&names).collect();
    assert!(extra.is_empty() && missing.is_empty(), "queues: extra {extra:?}, missing {missing:?}");
    for (name, w) in &by_name {
        let uid = w["metadata"]["uid"].as_str().expect("uid");
        let url = w["status"]["queue"]["url"].as_str().unwrap_or_else(|| panic!("{name}: no status.queue.url"));
        assert_eq!(queue_name(url), name.as_str(), "{name}: status.queue.url");
        let tags = moto.cloud.queues.queue_tags(url).await.expect("ListQueueTags");
        assert_eq!(tags.get("mooring:uid").map(String::as_str), Some(uid), "{name}: tags of the queue");
        let attrs = moto.cloud.queues.queue_attributes(url).await.expect("GetQueueAttributes");
        let redrive: Value = serde_json::from_str(attrs.get("RedrivePolicy").map(String::as_str).unwrap_or("null"))
            .unwrap_or(Value::Null);
        let dlq_arn = redrive["deadLetterTargetArn"].as_str().unwrap_or_default();
        assert!(dlq_arn.ends_with(&format!(":{name}-dlq")), "{name}: redrive policy {redrive}");
        let dlq_url = urls.iter().find(|u| queue_name(u) == format!("{name}-dlq")).expect("the dead-letter queue");
        let tags = moto.cloud.queues.queue_tags(dlq_url).await.expect("ListQueueTags");
        assert_eq!(tags.get("mooring:uid").map(String::as_str), Some(uid), "{name}: tags of the dead-letter queue");
    }
    eprintln!(
        "[check] moto matches the specs: {} ACTIVE services, {families_checked} task definition families, {} queues",
        active.len(),
        urls.len()
    );
}

/// moto holds nothing of the run: no ACTIVE service in the cluster, no
/// ACTIVE task definition of the workers' families, no queue of the namespace.
async fn check_moto_empty(moto: &Moto, cluster: &str, ns: &str) {
    let ecs = aws_sdk_ecs::Client::new(moto.sdk());
    let sqs = aws_sdk_sqs::Client::new(moto.sdk());
    let services = services_in(&ecs, cluster).await;
    let left: Vec<_> = services
        .iter()
        .filter(|s| s.status() != Some("INACTIVE"))
        .map(|s| format!("{} ({})", s.service_name().unwrap_or("?"), s.status().unwrap_or("?")))
        .collect();
    assert!(left.is_empty(), "services left in {cluster}: {left:?}");
    let mut families_left = Vec::new();
    for i in 0..WORKERS {
        let family = format!("{ns}_{}", worker_name(i));
        let revisions = moto.cloud.ecs.list_task_definitions(&family).await.expect("ListTaskDefinitions");
        if !revisions.is_empty() {
            families_left.push(revisions);
        }
    }
    assert!(families_left.is_empty(), "ACTIVE task definitions left: {families_left:?}");
    let queues = queues_with_prefix(&sqs, &format!("{ns}_")).await;
    assert!(queues.is_empty(), "queues left: {queues:?}");
    eprintln!("[check] moto holds nothing of {ns}: {} services listed, all INACTIVE", services.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_of_200_workers_survives_killed_replicas_and_restarted_redis_and_postgres() {
    let started = Instant::now();
    let phase = |what: &str| eprintln!("[chaos test {:>6.1}s] {what}", started.elapsed().as_secs_f64());
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let cluster = format!("chaos-{id}");
    let ns = format!("chaos-{id}");
    let moto = Moto::connect().await;
    moto.ensure_cluster(&cluster).await;

    // The private services live in a directory of their own (the stack's is
    // made once the database exists); kept with the logs when the test fails.
    let services_dir = std::env::temp_dir().join(format!("mooring-e2e-chaos-services-{id}"));
    let _services_dir = KeepOnFailure(services_dir.clone());
    let postgres = PrivatePostgres::start(&services_dir).await;
    let redis = PrivateRedis::start(&services_dir).await;
    phase(&format!("private Postgres on port {} and Redis at {}", postgres.port(), redis.url()));
    let stack = Stack::on("chaos", &postgres.url("postgres"), &redis.url()).await;
    phase("stack ready (the mooring binary built)");

    let mut replicas: Vec<Server> = ["replica-a", "replica-b", "replica-c"]
        .into_iter()
        .map(|name| {
            stack
                .server()
                .name(name)
                .on_moto(&moto)
                .env("MOORING_SHARDS", "12")
                .env("MOORING_LEASE_SECONDS", "3")
                .env(
                    "MOORING_AWS_BUDGETS",
                    "ecs-register-task-definition=50/25,ecs-service-write=50/25,ecs-read=100/50,sqs=200/100",
                )
                .spawn()
        })
        .collect();
    for r in &mut replicas {
        r.wait_healthy().await;
    }
    let urls = Arc::new(Mutex::new(replicas.iter().map(|r| format!("http://{}", r.addr())).collect::<Vec<_>>()));
    let fleet = Fleet {
        urls: urls.clone(),
        token: stack.token.clone(),
        http: reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(15)).build().expect("a client"),
        next: Default::default(),
        server_errors: Mutex::default(),
        retried: Mutex::default(),
    };
    phase("three replicas up");

    // The rollout, under chaos: creates in batches, then a new image for half
    // the fleet once most of it exists.
    let world = World { replicas, _stack: stack, redis, postgres, urls: urls.clone(), rounds: 0 };
    let (stop, stopped) = watch::channel(false);
    let script = tokio::spawn(chaos(world, 3, stopped, started));
    let docs = |updated: bool| -> Vec<Value> {
        (0..WORKERS).map(|i| worker_json(&worker_name(i), &ns, &cluster, image_of(i, updated))).collect()
    };
    for batch in docs(false).chunks(BATCH) {
        fleet.apply(batch).await;
    }
    phase(&format!("{WORKERS} workers applied"));
    let synced = eventually("half the fleet Synced at generation 1", CONVERGE, async || {
        let items = fleet.workers(&ns).await?;
        let n = items
            .iter()
            .filter(|w| condition(w, "Synced").is_some_and(|c| c["status"] == "True" && c["observedGeneration"] == 1))
            .count();
        if n >= WORKERS / 2 { Ok(n) } else { Err(format!("{n} Synced")) }
    })
    .await;
    phase(&format!("{synced} workers Synced; a new image for workers 0..{UPDATED}"));
    for batch in docs(true)[..UPDATED].chunks(BATCH) {
        fleet.apply(batch).await;
    }
    phase("image update applied");
    stop.send_replace(true);
    let world = script.await.expect("the chaos script");
    phase(&format!("chaos stopped after {} rounds", world.rounds));

    let expected: BTreeMap<String, &str> = (0..WORKERS).map(|i| (worker_name(i), image_of(i, true))).collect();
    let workers = wait_converged(&fleet, &ns, &expected).await;
    phase("every worker Synced and Ready at its generation");
    for w in &workers {
        let name = w["metadata"]["name"].as_str().unwrap_or_default();
        let i: usize = name.trim_start_matches("w-").parse().expect("a worker index");
        let want = if i < UPDATED { json!(2) } else { json!(1) };
        assert_eq!(w["metadata"]["generation"], want, "{name}: generation");
    }
    check_moto_matches(&moto, &cluster, &ns, &workers).await;
    phase("moto holds exactly what the specs describe");

    // Delete everything, under chaos again.
    let (stop, stopped) = watch::channel(false);
    let script = tokio::spawn(chaos(world, 2, stopped, started));
    for i in 0..WORKERS {
        let path = format!("/v1/namespaces/{ns}/workers/{}", worker_name(i));
        let (status, body) = fleet.send(Method::DELETE, &path, None).await;
        assert!(
            status == StatusCode::ACCEPTED || status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "DELETE {path}: {status}: {body}"
        );
    }
    phase(&format!("{WORKERS} deletes requested"));
    stop.send_replace(true);
    let world = script.await.expect("the chaos script");
    phase(&format!("chaos stopped after {} rounds", world.rounds));
    let mut last_report = Instant::now();
    eventually("every worker gone", CONVERGE, async || {
        let items = fleet.workers(&ns).await?;
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!("[delete] {} workers left", items.len());
        }
        if items.is_empty() {
            Ok(())
        } else {
            let first: Vec<String> = items
                .iter()
                .take(3)
                .map(|w| format!("{}: {}", w["metadata"]["name"], w["status"]["conditions"]))
                .collect();
            Err(format!("{} left, e.g. {first:?}", items.len()))
        }
    })
    .await;
    phase("every worker gone");
    check_moto_empty(&moto, &cluster, &ns).await;
    phase("moto holds nothing of the namespace");

    for r in &world.replicas {
        let log = r.log();
        assert!(!log.contains("panicked at"), "{} panicked; log {}", r.name, r.log_path().display());
    }
    eprintln!("[chaos test] API requests retried, by cause: {:?}", fleet.retried.lock().expect("retried"));
    let errors = fleet.server_errors.lock().expect("errors").clone();
    assert!(errors.is_empty(), "5xx answers other than 503 during the chaos: {errors:#?}");
    let _ = aws_sdk_ecs::Client::new(moto.sdk()).delete_cluster().cluster(&cluster).send().await;
    drop(world);
    phase("done");
}

/// Removes a directory on drop unless the test is failing (then says where it is).
struct KeepOnFailure(std::path::PathBuf);

impl Drop for KeepOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("E2E_KEEP_LOGS").is_some_and(|v| !v.is_empty()) {
            eprintln!("[chaos] kept {} (Postgres and Redis logs)", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
