//! `mooring serve`: the API and (unless `--api-only`) the controller in one
//! process, configured by flags and environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};

use desired_state::api::{self, ApiConfig, AppState};
use desired_state::auth::{GroupScope, JwksSource, OidcConfig};
use desired_state::ratelimit::TokenBucket;
use desired_state::redis::{RedisHandle, RedisSettings};
use desired_state::signing::{KeySource, Signer};
use desired_state::store::retention::{self, Retention};
use desired_state::store::{ChangeFeed, Store, StoreConfig};

use controller::budget::{Budgets, RedisGate};
use controller::events::EventTrigger;
use controller::keys::KeySettings;
use controller::lease::{LeaseConfig, ShardLeases};
use controller::logs::WorkloadLogs;
use controller::metrics::{AwsCallMetrics, ControllerMetrics};
use controller::nodeset::{NodeSetConfig, NodeSets};
use controller::reconcile::Reconcilers;
use controller::resource_metrics::{ResourceGauges, ResourceMetricsRefresh};
use controller::runtime::{Controller, ControllerConfig};
use runners::autoscale::ScaleConfig;
use runners::aws::sqs::SqsQueue;
use runners::aws::{AwsContext, AwsIdentity, AwsSettings};
use runners::cloud::{Cloud, NodeCloud};
use runners::provision::ProvisionExecutor;
use runners::provision::local::LocalBuilds;
use runners::sim::{SimCloud, SimConfig};
use runners::workload::{NodeConfig, Nodes, WorkloadConfig, Workloads};
use std::time::Duration;

/// Database and signing-key settings shared by `serve`, `migrate` and `audit`.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Postgres URL.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/mooring")]
    pub database_url: String,
    /// File with the Ed25519 key that signs revisions (PKCS#8 PEM, or a 32-byte
    /// seed in hex or base64). Without it, MOORING_SIGNING_KEY, else a
    /// development key kept in the cache directory.
    #[arg(long, env = "MOORING_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
    /// Secrets Manager ARN of the signing key (same formats as the file).
    #[arg(long, env = "MOORING_SIGNING_KEY_ARN")]
    pub signing_key_arn: Option<String>,
    /// Local AWS endpoint (moto) for development and tests; unset for real AWS.
    #[arg(long, env = "MOORING_AWS_ENDPOINT")]
    pub aws_endpoint: Option<String>,
    /// AWS region; overrides the standard chain (AWS_REGION, AWS_DEFAULT_REGION,
    /// the profile's region, the task or instance metadata).
    #[arg(long, env = "MOORING_AWS_REGION")]
    pub aws_region: Option<String>,
}

impl StoreArgs {
    /// How this process reaches AWS; load it once ([`AwsContext`]) and share it.
    pub fn aws_settings(&self) -> AwsSettings {
        AwsSettings { endpoint: self.aws_endpoint.clone(), region: self.aws_region.clone() }
    }

    async fn key_source(&self, aws: &AwsContext) -> anyhow::Result<KeySource> {
        let settings = KeySettings {
            file: self.signing_key_file.clone(),
            arn: self.signing_key_arn.clone(),
            inline: std::env::var("MOORING_SIGNING_KEY").ok(),
        };
        controller::keys::key_source(&settings, &cache_dir(), aws).await
    }

    /// Connects and migrates. Migrations take a Postgres advisory lock, so
    /// replicas starting together on an old schema apply each one once.
    pub async fn open(&self, aws: &AwsContext) -> anyhow::Result<Store> {
        let signer = Signer::load(&self.key_source(aws).await?).context("loading the signing key")?;
        let store = Store::connect_lazy(&StoreConfig::new(&self.database_url), signer)
            .with_context(|| format!("invalid database URL {}", redact(&self.database_url)))?;
        store.migrate().await.with_context(|| format!("migrating {}", redact(&self.database_url)))?;
        Ok(store)
    }
}

/// `$MOORING_CACHE_DIR`, else `~/.cache/mooring`.
pub fn cache_dir() -> PathBuf {
    if let Ok(d) = std::env::var("MOORING_CACHE_DIR") {
        return PathBuf::from(d);
    }
    std::env::var("HOME").map(|h| PathBuf::from(h).join(".cache/mooring")).unwrap_or_else(|_| PathBuf::from(".mooring"))
}

/// Hides a password in a URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Which cloud the runners talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloudKind {
    /// AWS through the SDK (or a local AWS such as moto with `--aws-endpoint`).
    Aws,
    /// The in-process simulated cloud (demos, scale and fault experiments).
    Sim,
}

/// Where node provisioning builds run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NodeBuilds {
    /// CodeBuild builds of the provisioner project (production).
    Codebuild,
    /// `mooring-provisioner` as a local subprocess (development and tests).
    Local,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `mooring serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address of the HTTP API.
    #[arg(long, env = "MOORING_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A second address serving `/metrics` (and `/healthz`) without a token,
    /// for a Prometheus scraper on a private network; on `--listen`,
    /// `/metrics` needs a token with the `metrics` scope.
    #[arg(long, env = "MOORING_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Redis URL (leases, rate limits); `rediss://` for TLS (ElastiCache with
    /// encryption in transit).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Redis AUTH password (an ElastiCache auth token), added to the URL when
    /// the URL carries none; kept out of the URL so it can come from a secret.
    #[arg(long, env = "MOORING_REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    /// Run only the API.
    #[arg(long, conflicts_with = "controller_only")]
    pub api_only: bool,
    /// Run only the controller.
    #[arg(long)]
    pub controller_only: bool,
    /// Made an `admin:*` token named `bootstrap` at start-up (idempotent).
    #[arg(long, env = "MOORING_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<String>,
    /// Requests per second per token (0 disables the limit).
    #[arg(long, env = "MOORING_RATE_LIMIT", default_value_t = 50.0)]
    pub rate_limit: f64,
    /// Burst per token.
    #[arg(long, env = "MOORING_RATE_LIMIT_BURST", default_value_t = 100.0)]
    pub rate_limit_burst: f64,
    /// OIDC issuer (e.g. https://cognito-idp.REGION.amazonaws.com/POOL_ID).
    #[arg(long, env = "MOORING_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Expected audience (`aud`) or Cognito app client id (`client_id`);
    /// required with `--oidc-issuer`.
    #[arg(long, env = "MOORING_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// JWKS URL (default: ISSUER/.well-known/jwks.json).
    #[arg(long, env = "MOORING_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,
    /// JWKS file instead of a URL.
    #[arg(long, env = "MOORING_OIDC_JWKS_FILE")]
    pub oidc_jwks_file: Option<PathBuf>,
    /// Claim holding the caller's groups.
    #[arg(long, env = "MOORING_OIDC_GROUPS_CLAIM", default_value = "cognito:groups")]
    pub oidc_groups_claim: String,
    /// `GROUP=ROLE:NAMESPACE`: members of GROUP get that scope (repeatable;
    /// comma-separated in the environment). Groups not listed grant nothing.
    #[arg(long = "oidc-group-scope", env = "MOORING_OIDC_GROUP_SCOPES", value_delimiter = ',')]
    pub oidc_group_scopes: Vec<GroupScope>,
    /// Prefix of every Redis key.
    #[arg(long, env = "MOORING_REDIS_PREFIX", default_value = "mooring")]
    pub redis_prefix: String,
    /// The longest one Redis operation may take, in milliseconds. Past it the
    /// API's rate limit fails open and leases and AWS budgets fail closed.
    #[arg(long, env = "MOORING_REDIS_TIMEOUT_MS", default_value_t = 250)]
    pub redis_timeout_ms: u64,
    /// Log format; JSON for production.
    #[arg(long, env = "MOORING_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Shards resources are hashed into (the same on every replica).
    #[arg(long, env = "MOORING_SHARDS", default_value_t = 32)]
    pub shards: u32,
    /// Shard lease time to live, in seconds; a dead replica's shards move within it.
    #[arg(long, env = "MOORING_LEASE_SECONDS", default_value_t = 15.0)]
    pub lease_seconds: f64,
    /// How long the change feed keeps changes (`30m`, `24h`, `7d`): a watcher
    /// resumes within it; an older position is answered 410 and lists again.
    #[arg(long, env = "MOORING_CHANGES_RETENTION", default_value = "24h", value_parser = retention_duration)]
    pub changes_retention: Duration,
    /// How long events are kept after they were last seen.
    #[arg(long, env = "MOORING_EVENTS_RETENTION", default_value = "7d", value_parser = retention_duration)]
    pub events_retention: Duration,
    /// Every resource is reconciled at least this often, in seconds (±10%).
    #[arg(long, env = "MOORING_RESYNC_SECONDS", default_value_t = 300.0)]
    pub resync_seconds: f64,
    /// Concurrent reconciles per kind.
    #[arg(long, env = "MOORING_WORKERS", default_value_t = 8)]
    pub workers: usize,
    /// The longest a reconcile's AWS call waits for its budget token; a longer
    /// wait gives the worker back and the resource is looked at again when the
    /// budget has refilled.
    #[arg(long, env = "MOORING_BUDGET_MAX_WAIT_SECONDS", default_value_t = 2.0)]
    pub budget_max_wait_seconds: f64,
    /// AWS budget overrides, e.g. `ecs-read=50/10,ec2-mutate=10/2` (burst/per second).
    #[arg(long, env = "MOORING_AWS_BUDGETS", default_value = "")]
    pub aws_budgets: String,
    /// This replica's id (default: host name, process id and a random suffix).
    #[arg(long, env = "MOORING_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// SQS queue fed by EventBridge with ECS and EC2 events (reconcile triggers).
    #[arg(long, env = "MOORING_EVENTS_QUEUE_URL")]
    pub events_queue_url: Option<String>,
    /// The cloud the runners act on.
    #[arg(long, env = "MOORING_CLOUD", value_enum, default_value = "aws")]
    pub cloud: CloudKind,
    /// With `--cloud sim`: the seed of its randomness (faults, latencies).
    #[arg(long, env = "MOORING_SIM_SEED", default_value_t = 1)]
    pub sim_seed: u64,
    /// With `--cloud sim`: the ECS clusters that exist.
    #[arg(long, env = "MOORING_SIM_CLUSTERS", value_delimiter = ',', default_value = "default,prod,batch")]
    pub sim_clusters: Vec<String>,
    /// Seconds between looks at a resource while a rollout, cache or teardown is in flight.
    #[arg(long, env = "MOORING_POLL_SECONDS", default_value_t = 10.0)]
    pub poll_seconds: f64,
    /// Seconds an observation of a settled service or node may be reused
    /// (batched DescribeServices, DescribeInstances, DescribeInstanceStatus);
    /// AWS events and Mooring's own writes refresh it sooner.
    #[arg(long, env = "MOORING_OBSERVE_MAX_AGE_SECONDS", default_value_t = 60.0)]
    pub observe_max_age_seconds: f64,
    /// Seconds a recorded service, queue or cache that Mooring did not delete
    /// must stay absent from AWS's reads before it is believed gone (AWS's
    /// reads are eventually consistent); longer than the cloud's consistency
    /// window.
    #[arg(long, env = "MOORING_ABSENCE_GRACE_SECONDS", default_value_t = 30.0)]
    pub absence_grace_seconds: f64,
    /// Seconds between autoscaling decisions of a scaling relay or worker
    /// (metrics are read this often, batched through the AWS budgets).
    #[arg(long, env = "MOORING_SCALE_INTERVAL_SECONDS", default_value_t = 15.0)]
    pub scale_interval_seconds: f64,
    /// Where node provisioning builds run.
    #[arg(long, env = "MOORING_NODE_BUILDS", value_enum, default_value = "codebuild")]
    pub node_builds: NodeBuilds,
    /// Node builds the install runs at once, counted from the builds node
    /// statuses record as in flight (CodeBuild's default account limit is 20).
    #[arg(long, env = "MOORING_MAX_NODE_BUILDS", default_value_t = 20)]
    pub max_node_builds: usize,
    /// This install's name: shared infrastructure Mooring creates (the node
    /// provisioner's CodeBuild project) carries it as the tag `mooring:install`,
    /// and a project without that tag is never rewritten.
    #[arg(long, env = "MOORING_INSTALL_NAME", default_value = "mooring")]
    pub install_name: String,
    /// Connect node health checks to this host instead of the instance's private IP
    /// (development against a local AWS, where instances are not reachable).
    #[arg(long, env = "MOORING_NODE_HEALTH_HOST")]
    pub node_health_host: Option<String>,
    /// IAM role of the CodeBuild provisioner project.
    #[arg(
        long,
        env = "MOORING_CODEBUILD_ROLE_ARN",
        default_value = "arn:aws:iam::123456789012:role/mooring-node-provisioner"
    )]
    pub codebuild_role_arn: String,
    /// `bucket/key` of the zip with the `mooring-provisioner` binary (the project's source).
    #[arg(long, env = "MOORING_CODEBUILD_SOURCE", default_value = "mooring-artifacts/mooring-provisioner.zip")]
    pub codebuild_source: String,
    /// The `mooring-provisioner` binary local builds run (default: next to `mooring`).
    #[arg(long, env = "MOORING_PROVISIONER_BIN")]
    pub provisioner_bin: Option<PathBuf>,
    /// Seconds between `fleet status` log lines (shards without an owner,
    /// resources not Ready; the install's alarms read them); 0: none.
    #[arg(long, env = "MOORING_FLEET_REPORT_SECONDS", default_value_t = 60.0)]
    pub fleet_report_seconds: f64,
    /// Seconds between refreshes of the per-resource gauges on `/metrics`
    /// (conditions, replicas, generations of the resources in this replica's
    /// shards, read from the store); 0: none.
    #[arg(long, env = "MOORING_RESOURCE_METRICS_SECONDS", default_value_t = 15.0)]
    pub resource_metrics_seconds: f64,
    /// Seconds in-flight reconciles may run after SIGTERM.
    #[arg(long, env = "MOORING_SHUTDOWN_GRACE_SECONDS", default_value_t = 30.0)]
    pub shutdown_grace_seconds: f64,
}

impl ServeArgs {
    /// The OIDC settings; an issuer without an audience is refused, so a user
    /// pool's other app clients cannot call the API.
    fn oidc(&self) -> anyhow::Result<Option<OidcConfig>> {
        let Some(issuer) = self.oidc_issuer.clone() else { return Ok(None) };
        let audience = self.oidc_audience.clone().filter(|a| !a.trim().is_empty()).ok_or_else(|| {
            anyhow::anyhow!(
                "--oidc-issuer needs --oidc-audience: the app client id (or audience) tokens must be issued for"
            )
        })?;
        let jwks = match (&self.oidc_jwks_file, &self.oidc_jwks_url) {
            (Some(f), _) => JwksSource::File(f.clone()),
            (None, Some(u)) => JwksSource::Url(u.clone()),
            (None, None) => JwksSource::Url(format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))),
        };
        if self.oidc_group_scopes.is_empty() {
            tracing::warn!("OIDC is on without --oidc-group-scope: OIDC callers get no scope and can do nothing");
        }
        Ok(Some(OidcConfig {
            issuer,
            audience,
            jwks,
            groups_claim: self.oidc_groups_claim.clone(),
            group_scopes: self.oidc_group_scopes.clone(),
        }))
    }

    /// The Redis URL with the password from `--redis-password` when the URL has none.
    fn redis_url(&self) -> anyhow::Result<String> {
        with_password(&self.redis_url, self.redis_password.as_deref())
    }

    fn api_config(&self) -> anyhow::Result<ApiConfig> {
        Ok(ApiConfig {
            oidc: self.oidc()?,
            rate_limit: (self.rate_limit > 0.0)
                .then_some(TokenBucket { capacity: self.rate_limit_burst.max(1.0), refill_per_sec: self.rate_limit }),
            redis_prefix: self.redis_prefix.clone(),
        })
    }
}

/// `url` with `password` as its password, unless it has one already or
/// `password` is empty.
pub fn with_password(url: &str, password: Option<&str>) -> anyhow::Result<String> {
    let Some(password) = password.filter(|p| !p.is_empty()) else { return Ok(url.to_string()) };
    let mut parsed = reqwest::Url::parse(url).with_context(|| format!("invalid URL {}", redact(url)))?;
    if parsed.password().is_some() {
        return Ok(url.to_string());
    }
    parsed.set_password(Some(password)).map_err(|()| anyhow::anyhow!("{} cannot carry a password", redact(url)))?;
    Ok(parsed.to_string())
}

/// Sets up logging: human-readable text, or JSON lines for production.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MOORING_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

/// The Region the simulated cloud says it is in.
const SIM_REGION: &str = "us-east-1";

/// How often a replica tries to compact the change feed and events.
const COMPACTION_INTERVAL: Duration = Duration::from_secs(600);

/// A retention window (`--changes-retention`, `--events-retention`): at least a minute.
fn retention_duration(s: &str) -> Result<Duration, String> {
    let d = crate::cli::duration::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(60) {
        return Err(format!("{s:?}: keep at least a minute"));
    }
    Ok(d)
}

/// Runs `mooring serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let api_config = args.api_config()?;
    let aws = AwsContext::new(args.store.aws_settings());
    let identity = match args.cloud {
        CloudKind::Aws => Some(aws_identity(&aws).await?),
        CloudKind::Sim => None,
    };
    let store = args.store.open(&aws).await?;
    if let Some(token) = &args.bootstrap_token {
        store
            .ensure_token("bootstrap", token, &["admin:*".to_string()])
            .await
            .context("creating the bootstrap token")?;
        tracing::info!("bootstrap token is ready (admin:*)");
    }
    let redis_url = args.redis_url()?;
    let redis_settings =
        RedisSettings { op_timeout: Duration::from_millis(args.redis_timeout_ms.max(1)), ..RedisSettings::default() };
    let redis = Arc::new(
        RedisHandle::with_settings(&redis_url, redis_settings)
            .with_context(|| format!("invalid Redis URL {}", redact(&redis_url)))?,
    );
    // The feed (sequencer, listener, readers) has connections of its own.
    let feed = ChangeFeed::start(store.dedicated(4));
    // Compaction (one replica at a time, under an advisory lock).
    let retention = Retention { changes: args.changes_retention, events: args.events_retention };
    let _compaction = retention::spawn(store.clone(), retention, COMPACTION_INTERVAL);
    let mut app = AppState::new(store.clone(), feed.clone(), Some(redis.clone()), api_config);
    app.cloud = identity.as_ref().map(|i| api::CloudIdentity {
        account: i.account.clone(),
        principal: i.arn.clone(),
        region: i.region.clone(),
    });
    // Every AWS call of this process, the API's `logs` reads included, draws
    // from the same budgets and is counted in the same metrics.
    let aws_metrics =
        Arc::new(AwsCallMetrics::new(&mut app.metrics.registry.lock().unwrap_or_else(|e| e.into_inner())));
    let budgets = Budgets::default().with_overrides(&args.aws_budgets)?;
    let gate = Arc::new(
        RedisGate::new(redis.clone(), &args.redis_prefix, budgets, aws_metrics)
            .with_max_wait(Duration::from_secs_f64(args.budget_max_wait_seconds.max(0.0))),
    );
    let (cloud, node_cloud, region) = clouds(&args, &aws, identity.as_ref()).await;
    app.logs = Some(Arc::new(WorkloadLogs { logs: cloud.logs.clone(), gate: gate.clone() }));
    app.preview = Some(Arc::new(controller::preview::Renderer {
        region: identity.as_ref().map(|i| i.region.clone()).unwrap_or_else(|| SIM_REGION.to_string()),
    }));
    let state = Arc::new(app);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let controller = if args.api_only {
        None
    } else {
        let metrics = {
            let mut registry = state.metrics.registry.lock().unwrap_or_else(|e| e.into_inner());
            Arc::new(ControllerMetrics::new(&mut registry))
        };
        let replica = args.replica_id.clone().unwrap_or_else(default_replica_id);
        let lease = Duration::from_secs_f64(args.lease_seconds.max(1.0));
        let leases = Arc::new(ShardLeases::new(
            LeaseConfig {
                shards: args.shards.max(1),
                lease,
                renew_every: lease / 3,
                prefix: args.redis_prefix.clone(),
            },
            redis.clone(),
            replica.clone(),
        ));
        let reconcilers = reconcilers(&args, &store, cloud, node_cloud, region);
        let config = ControllerConfig {
            workers_per_kind: args.workers.max(1),
            resync: Duration::from_secs_f64(args.resync_seconds.max(1.0)),
            shutdown_grace: Duration::from_secs_f64(args.shutdown_grace_seconds.max(0.0)),
            ..Default::default()
        };
        tracing::info!(%replica, shards = args.shards, "controller starting");
        let events = match &args.events_queue_url {
            Some(url) => {
                tracing::info!(queue = %url, "reading AWS events");
                let trigger = EventTrigger {
                    store: store.dedicated(2),
                    queue: Arc::new(SqsQueue::new(aws.config().await, url.clone())),
                    gate: gate.clone(),
                };
                Some(tokio::spawn(trigger.run(stop_rx.clone())))
            }
            None => None,
        };
        let fleet = (args.fleet_report_seconds > 0.0).then(|| {
            let report = controller::fleet::FleetReport {
                store: store.dedicated(1),
                redis: redis.clone(),
                prefix: args.redis_prefix.clone(),
                shards: args.shards.max(1),
                every: Duration::from_secs_f64(args.fleet_report_seconds),
            };
            tokio::spawn(report.run(stop_rx.clone()))
        });
        let gauges = (args.resource_metrics_seconds > 0.0).then(|| {
            let gauges = Arc::new(ResourceGauges::default());
            state
                .metrics
                .registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .register_collector(Box::new(gauges.clone()));
            let refresh = ResourceMetricsRefresh {
                store: store.dedicated(1),
                leases: leases.clone(),
                gauges,
                every: Duration::from_secs_f64(args.resource_metrics_seconds),
            };
            tokio::spawn(refresh.run(stop_rx.clone()))
        });
        // The controller has its own connections: API bursts do not delay reconciles.
        let c = Controller::new(store.dedicated(16), feed, leases, reconcilers, gate, metrics, config);
        Some((tokio::spawn(c.run(stop_rx.clone())), events, fleet, gauges))
    };

    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, api = !args.controller_only, "listening");
    let app = if args.controller_only { api::ops_router(state.clone()) } else { api::router(state.clone()) };
    let metrics_server = match args.metrics_listen {
        Some(address) => {
            let listener =
                tokio::net::TcpListener::bind(address).await.with_context(|| format!("binding {address}"))?;
            tracing::info!(address = %listener.local_addr()?, "serving /metrics without a token");
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(api::serve_router(listener, api::metrics_router(state.clone()), async move {
                let _ = stop.wait_for(|s| *s).await;
            })))
        }
        None => None,
    };
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(api::serve_router(listener, app, async move {
        let _ = server_stop.wait_for(|s| *s).await;
        // End watch streams so the graceful shutdown does not wait on them.
        state.shutdown.send_replace(true);
    }));
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    if let Some((c, events, fleet, gauges)) = controller {
        let _ = c.await;
        for task in [events, fleet, gauges].into_iter().flatten() {
            let _ = task.await;
        }
    }
    server.await.context("API task")?.context("serving the API")?;
    if let Some(m) = metrics_server {
        m.await.context("metrics task")?.context("serving /metrics")?;
    }
    tracing::info!("stopped");
    Ok(())
}

fn node_config(args: &ServeArgs) -> NodeConfig {
    let mut c = NodeConfig {
        poll_in_flight: Duration::from_secs_f64(args.poll_seconds.max(0.1)),
        observe_max_age: Duration::from_secs_f64(args.observe_max_age_seconds.max(0.0)),
        max_concurrent_builds: args.max_node_builds.max(1),
        health_host: args.node_health_host.clone(),
        // The simulated cloud's instances have no network to probe.
        probe_health: args.cloud == CloudKind::Aws,
        install: args.install_name.clone(),
        ..Default::default()
    };
    c.project.service_role = args.codebuild_role_arn.clone();
    c.project.source_location = args.codebuild_source.clone();
    c
}

/// The clients of the chosen cloud and its region: the AWS SDK (one
/// configuration for every client) or one simulated account; node builds in
/// CodeBuild, as local subprocesses, or inside the simulated account.
async fn clouds(args: &ServeArgs, aws: &AwsContext, identity: Option<&AwsIdentity>) -> (Cloud, NodeCloud, String) {
    let (cloud, node_cloud, region) = match (args.cloud, identity) {
        (CloudKind::Aws, Some(identity)) => {
            let sdk = aws.config().await;
            (runners::aws::cloud_from(sdk), runners::aws::node_cloud_from(sdk), identity.region.clone())
        }
        (CloudKind::Aws, None) => {
            let sdk = aws.config().await;
            let region = aws.region().await.unwrap_or_else(|| runners::aws::LOCAL_DEFAULT_REGION.to_string());
            (runners::aws::cloud_from(sdk), runners::aws::node_cloud_from(sdk), region)
        }
        (CloudKind::Sim, _) => {
            tracing::info!(seed = args.sim_seed, "using the simulated cloud");
            let sim = SimCloud::new(SimConfig {
                seed: args.sim_seed,
                clusters: args.sim_clusters.clone(),
                ..Default::default()
            });
            (sim.cloud(), ProvisionExecutor::simulated(&sim, Default::default()), SIM_REGION.to_string())
        }
    };
    let node_cloud = match (args.node_builds, args.cloud) {
        (NodeBuilds::Local, CloudKind::Aws) => {
            let mut env = std::collections::BTreeMap::new();
            if let Some(endpoint) = &aws.settings().endpoint {
                env.insert("MOORING_AWS_ENDPOINT".to_string(), endpoint.clone());
            }
            env.insert("AWS_REGION".to_string(), region.clone());
            let program = args.provisioner_bin.clone().unwrap_or_else(LocalBuilds::default_program);
            tracing::info!(program = %program.display(), "node builds run as local processes");
            NodeCloud { builds: Arc::new(LocalBuilds::new(program, cache_dir().join("builds"), env)), ..node_cloud }
        }
        _ => node_cloud,
    };
    (cloud, node_cloud, region)
}

/// The reconciler of each kind, over the cloud's clients.
fn reconcilers(args: &ServeArgs, store: &Store, cloud: Cloud, node_cloud: NodeCloud, region: String) -> Reconcilers {
    let config = WorkloadConfig {
        region,
        poll_in_flight: Duration::from_secs_f64(args.poll_seconds.max(0.1)),
        observe_max_age: Duration::from_secs_f64(args.observe_max_age_seconds.max(0.0)),
        absence_grace: Duration::from_secs_f64(args.absence_grace_seconds.max(0.0)),
        scale: ScaleConfig {
            interval: Duration::from_secs_f64(args.scale_interval_seconds.max(0.1)),
            ..Default::default()
        },
    };
    let slots = Arc::new(controller::slots::StoreBuildSlots::new(store.dedicated(1)));
    let poll = Duration::from_secs_f64(args.poll_seconds.max(0.1));
    let sets = NodeSets::new(store.clone(), node_cloud.dns.clone(), NodeSetConfig { poll, ..Default::default() });
    controller::workloads::reconcilers(
        Some(Workloads::new(cloud, config)),
        Some(Nodes::new(node_cloud, node_config(args), slots)),
        Some(sets),
    )
}

/// Establishes (once) and logs who this process is in AWS: the account, the
/// principal and the region every client uses. A process without a region or
/// working credentials stops here with the reason, before it touches anything.
async fn aws_identity(aws: &AwsContext) -> anyhow::Result<AwsIdentity> {
    let identity = runners::aws::identity(aws.config().await).await?;
    tracing::info!(
        account = %identity.account,
        principal = %identity.arn,
        region = %identity.region,
        endpoint = aws.settings().endpoint.as_deref().unwrap_or("AWS"),
        "AWS identity"
    );
    Ok(identity)
}

fn default_replica_id() -> String {
    let host =
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "mooring".into());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn serve_args(args: &[&str]) -> ServeArgs {
        <Serve as clap::Parser>::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).unwrap().args
    }

    #[test]
    fn oidc_needs_an_audience_and_maps_groups_explicitly() {
        let err = serve_args(&["--oidc-issuer", "https://issuer"]).api_config().unwrap_err();
        assert!(err.to_string().contains("--oidc-audience"), "{err}");
        let config = serve_args(&[
            "--oidc-issuer",
            "https://issuer",
            "--oidc-audience",
            "app",
            "--oidc-group-scope",
            "platform=admin:*",
            "--oidc-group-scope",
            "payments-devs=write:payments",
        ])
        .api_config()
        .unwrap();
        let oidc = config.oidc.unwrap();
        assert_eq!(oidc.audience, "app");
        let scopes: Vec<String> = oidc.scopes_for(["payments-devs", "admin"]).iter().map(ToString::to_string).collect();
        assert_eq!(scopes, ["write:payments"]);
        assert!(<Serve as clap::Parser>::try_parse_from(["serve", "--oidc-group-scope", "admin"]).is_err());
        assert!(serve_args(&[]).api_config().unwrap().oidc.is_none());
    }

    #[test]
    fn a_redis_password_goes_into_the_url_unless_it_has_one() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("rediss://cache.example:6379", Some("s3cret"), "rediss://:s3cret@cache.example:6379"),
            ("redis://127.0.0.1:6379", None, "redis://127.0.0.1:6379"),
            ("redis://127.0.0.1:6379", Some(""), "redis://127.0.0.1:6379"),
            ("rediss://:mine@cache.example:6379", Some("other"), "rediss://:mine@cache.example:6379"),
            ("rediss://cache.example:6379/0", Some("a b/c"), "rediss://:a%20b%2Fc@cache.example:6379/0"),
        ];
        for (url, password, want) in cases {
            assert_eq!(with_password(url, *password).unwrap(), *want, "{url} {password:?}");
        }
        assert!(with_password("not a url", Some("p")).is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
