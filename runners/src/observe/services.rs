//! ECS services, observed in batches of ten per cluster, and task
//! definitions, cached by ARN.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::Observer;
use crate::cloud::ecs::{MAX_DESCRIBE_SERVICES, Service, TaskDefinition};
use crate::cloud::{CloudResult, Ecs};

/// Batches DescribeServices across resources (scope: the cluster; key: the
/// service's name); see the module documentation of [`super`].
pub struct ServiceObserver(Observer<Service>);

impl ServiceObserver {
    /// An observer that treats observations older than `stale_after` as due.
    pub fn new(stale_after: Duration) -> ServiceObserver {
        ServiceObserver(Observer::new(stale_after, MAX_DESCRIBE_SERVICES))
    }

    /// How old an observation may be before it is refreshed.
    pub fn stale_after(&self) -> Duration {
        self.0.stale_after()
    }

    /// The service `name` of `cluster` as observed at most `max_age` ago
    /// (`None`: it does not exist); with `max_age` zero, as observed by a
    /// describe sent after this call began.
    pub async fn observe(
        &self,
        ecs: &dyn Ecs,
        cluster: &str,
        name: &str,
        max_age: Duration,
    ) -> CloudResult<Option<Service>> {
        self.0
            .observe(cluster, name, max_age, |names| async move {
                let services = ecs.describe_services(cluster, &names).await?;
                Ok(services.into_iter().map(|s| (s.name.clone(), s)).collect::<HashMap<_, _>>())
            })
            .await
    }

    /// Says a reconcile of this service is coming (the controller queued it).
    pub fn expect(&self, cluster: &str, name: &str) {
        self.0.expect(cluster, name);
    }

    /// Records what AWS answered to a create or update.
    pub fn record(&self, service: &Service) {
        self.0.record(&service.cluster, &service.name, service.clone());
    }

    /// Forgets a service: the next observation asks AWS. With `stop`, it is
    /// no longer described in other services' batches either (it was deleted).
    pub fn forget(&self, cluster: &str, name: &str, stop: bool) {
        self.0.forget(cluster, name, stop);
    }
}

/// Task definitions by ARN; they never change once registered.
#[derive(Default)]
pub struct TaskDefinitions {
    by_arn: Mutex<HashMap<String, TaskDefinition>>,
}

/// Entries kept before the cache starts over (a revision is ~200 bytes here).
const TASK_DEFINITIONS_KEPT: usize = 100_000;

impl TaskDefinitions {
    /// The task definition `arn`, described once.
    pub async fn get(&self, ecs: &dyn Ecs, arn: &str) -> CloudResult<TaskDefinition> {
        if let Some(td) = self.lock().get(arn) {
            return Ok(td.clone());
        }
        let td = ecs.describe_task_definition(arn).await?;
        self.remember(&td);
        Ok(td)
    }

    /// Remembers a revision (after registering it).
    pub fn remember(&self, td: &TaskDefinition) {
        let mut map = self.lock();
        if map.len() >= TASK_DEFINITIONS_KEPT {
            map.clear();
        }
        map.insert(td.arn.clone(), td.clone());
    }

    /// Records a tag change Mooring made on a revision (its tags are the
    /// only thing about it that can change).
    pub fn retagged(&self, arn: &str, put: &crate::cloud::Tags, remove: &[String]) {
        if let Some(td) = self.lock().get_mut(arn) {
            td.tags.extend(put.iter().map(|(k, v)| (k.clone(), v.clone())));
            for k in remove {
                td.tags.remove(k);
            }
        }
    }

    /// Marks a revision deregistered.
    pub fn deregistered(&self, arn: &str) {
        if let Some(td) = self.lock().get_mut(arn) {
            td.active = false;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TaskDefinition>> {
        self.by_arn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    //! The clock is paused: describes take simulated time and sweeps can be
    //! slower than `stale_after` without the tests being slow.

    use std::sync::Arc;

    use super::super::MAX_UNASKED;
    use super::*;
    use crate::cloud::ecs::{ServiceInput, ServiceState, ServiceUpdate, TaskDefinitionInput};
    use crate::cloud::{CloudError, ErrorKind, Tags, ops};

    /// ECS with every service existing; records the batches described.
    struct FakeEcs {
        batches: Mutex<Vec<Vec<String>>>,
        took: Duration,
    }

    impl FakeEcs {
        fn new(took: Duration) -> Arc<FakeEcs> {
            Arc::new(FakeEcs { batches: Mutex::new(Vec::new()), took })
        }
        fn calls(&self) -> usize {
            self.batches.lock().unwrap().len()
        }
        fn batches(&self) -> Vec<Vec<String>> {
            self.batches.lock().unwrap().clone()
        }
    }

    fn service(name: &str, desired: u32) -> Service {
        Service {
            arn: format!("arn:svc/{name}"),
            name: name.into(),
            cluster: "c".into(),
            state: ServiceState::Active,
            task_definition: "arn:td:1".into(),
            desired_count: desired,
            running_count: 0,
            pending_count: 0,
            network: None,
            load_balancers: vec![],
            deployment: None,
            health_check_grace_seconds: None,
            deployments: vec![],
            current_service_deployment: None,
            spot: None,
            tags: Tags::new(),
        }
    }

    fn unsupported<T>() -> CloudResult<T> {
        Err(CloudError::new(&ops::DESCRIBE_TASK_DEFINITION, ErrorKind::Invalid, "not in this fake"))
    }

    #[async_trait::async_trait]
    impl Ecs for FakeEcs {
        async fn describe_services(&self, _cluster: &str, names: &[String]) -> CloudResult<Vec<Service>> {
            assert!(names.len() <= MAX_DESCRIBE_SERVICES, "{names:?}");
            let n = {
                let mut batches = self.batches.lock().unwrap();
                batches.push(names.to_vec());
                batches.len() as u32
            };
            tokio::time::sleep(self.took).await;
            // The desired count tells which describe answered.
            Ok(names.iter().map(|name| service(name, n)).collect())
        }
        async fn create_service(&self, _: &ServiceInput) -> CloudResult<Service> {
            unsupported()
        }
        async fn update_service(&self, _: &ServiceUpdate) -> CloudResult<Service> {
            unsupported()
        }
        async fn delete_service(&self, _: &str, _: &str, _: bool) -> CloudResult<()> {
            unsupported()
        }
        async fn retag(&self, _: &str, _: &Tags, _: &[String]) -> CloudResult<()> {
            unsupported()
        }
        async fn register_task_definition(&self, _: &TaskDefinitionInput) -> CloudResult<TaskDefinition> {
            unsupported()
        }
        async fn describe_task_definition(&self, _: &str) -> CloudResult<TaskDefinition> {
            unsupported()
        }
        async fn list_task_definitions(&self, _: &str) -> CloudResult<Vec<String>> {
            unsupported()
        }
        async fn deregister_task_definition(&self, _: &str) -> CloudResult<()> {
            unsupported()
        }
        async fn list_service_tasks(&self, _: &str, _: &str) -> CloudResult<Vec<String>> {
            unsupported()
        }
        async fn protected_tasks(&self, _: &str, _: &[String]) -> CloudResult<Vec<String>> {
            unsupported()
        }
        async fn describe_service_deployment(
            &self,
            _: &str,
        ) -> CloudResult<Option<crate::cloud::ecs::ServiceDeployment>> {
            unsupported()
        }
        async fn continue_service_deployment(
            &self,
            _: &str,
            _: &str,
            _: crate::cloud::ecs::HookAction,
        ) -> CloudResult<()> {
            unsupported()
        }
        async fn stop_service_deployment(&self, _: &str, _: crate::cloud::ecs::StopKind) -> CloudResult<()> {
            unsupported()
        }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("s{i:03}")).collect()
    }

    /// Asks for each service in turn, `gap` apart; returns the describes it took.
    async fn sweep(observer: &ServiceObserver, ecs: &FakeEcs, order: &[String], gap: Duration) -> usize {
        let before = ecs.calls();
        for name in order {
            let found = observer.observe(ecs, "c", name, observer.stale_after()).await.unwrap();
            assert_eq!(found.map(|s| s.name).as_deref(), Some(name.as_str()));
            tokio::time::sleep(gap).await;
        }
        ecs.calls() - before
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_costs_one_describe_per_ten_services() {
        let (observer, ecs) = (ServiceObserver::new(Duration::from_secs(60)), FakeEcs::new(Duration::from_millis(50)));
        let order = names(95);
        // Nothing known yet: one describe per service.
        assert_eq!(sweep(&observer, &ecs, &order, Duration::ZERO).await, 95);
        // Within `stale_after`: no describe at all.
        assert_eq!(sweep(&observer, &ecs, &order, Duration::ZERO).await, 0);
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(sweep(&observer, &ecs, &order, Duration::ZERO).await, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sweep_slower_than_stale_after_batches_what_comes_next() {
        // 95 services, 50 ms apart: a sweep takes ~5 s, five times `stale_after`.
        let (observer, ecs) = (ServiceObserver::new(Duration::from_secs(1)), FakeEcs::new(Duration::from_millis(5)));
        let forward = names(95);
        let backward: Vec<String> = forward.iter().rev().cloned().collect();
        let gap = Duration::from_millis(50);
        sweep(&observer, &ecs, &backward, gap).await;
        // The order changed: this sweep learns it.
        tokio::time::sleep(Duration::from_secs(2)).await;
        sweep(&observer, &ecs, &forward, gap).await;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let before = ecs.calls();
            let n = sweep(&observer, &ecs, &forward, gap).await;
            assert_eq!(n, 10, "{:?}", &ecs.batches()[before..before + 12]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn max_age_zero_is_answered_only_by_a_describe_sent_after_the_ask() {
        let observer = Arc::new(ServiceObserver::new(Duration::from_secs(60)));
        let ecs = FakeEcs::new(Duration::from_millis(100));
        let first = tokio::spawn({
            let (observer, ecs) = (observer.clone(), ecs.clone());
            async move { observer.observe(ecs.as_ref(), "c", "a", Duration::from_secs(60)).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(ecs.calls(), 1, "the first describe is in flight");
        // Asked while that describe is in flight: its answer is too old.
        let fresh = observer.observe(ecs.as_ref(), "c", "a", Duration::ZERO).await.unwrap().unwrap();
        assert_eq!(first.await.unwrap().unwrap().desired_count, 1);
        assert_eq!(fresh.desired_count, 2, "answered by the second describe");
        // A recent observation still answers a nonzero max_age, but never zero.
        assert_eq!(
            observer.observe(ecs.as_ref(), "c", "a", Duration::from_secs(1)).await.unwrap().unwrap().desired_count,
            2
        );
        assert_eq!(observer.observe(ecs.as_ref(), "c", "a", Duration::ZERO).await.unwrap().unwrap().desired_count, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn asks_waiting_behind_a_describe_go_together_in_the_next() {
        let observer = Arc::new(ServiceObserver::new(Duration::from_secs(60)));
        let ecs = FakeEcs::new(Duration::from_millis(100));
        let mut tasks = Vec::new();
        for (i, name) in names(12).into_iter().enumerate() {
            let (observer, ecs) = (observer.clone(), ecs.clone());
            tasks.push(tokio::spawn(async move {
                observer.observe(ecs.as_ref(), "c", &name, Duration::from_secs(60)).await.unwrap().unwrap()
            }));
            if i == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let batches = ecs.batches();
        assert_eq!(batches.len(), 3, "{batches:?}");
        assert_eq!(batches[0], ["s000"]);
        assert_eq!(batches[1].len(), MAX_DESCRIBE_SERVICES, "{batches:?}");
        assert_eq!(batches[2].len(), 1, "{batches:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn services_nobody_asks_for_any_more_go_last_in_line() {
        let (observer, ecs) = (ServiceObserver::new(Duration::from_secs(1)), FakeEcs::new(Duration::ZERO));
        // `gone` moved to another replica (or was deleted while this one was
        // down): it is never asked for again, yet its old ask ranks first.
        observer.observe(ecs.as_ref(), "c", "gone", Duration::ZERO).await.unwrap();
        let order = names(20);
        let mut costs = Vec::new();
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            costs.push(sweep(&observer, &ecs, &order, Duration::ZERO).await);
        }
        assert_eq!(costs[0], 20, "nothing known yet");
        assert_eq!(costs[10..], [2, 2], "{costs:?} {:?}", ecs.batches());
        let gone = ecs.batches().iter().filter(|b| b.iter().any(|n| n == "gone")).count();
        assert_eq!(gone, 1 + usize::from(MAX_UNASKED), "{:?}", ecs.batches());
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_never_replaces_a_newer_recorded_one() {
        let observer = Arc::new(ServiceObserver::new(Duration::from_secs(1)));
        let ecs = FakeEcs::new(Duration::from_millis(100));
        sweep(&observer, &ecs, &names(2), Duration::ZERO).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        // s000's describe takes s001 along; s001's own update is recorded meanwhile.
        let describing = tokio::spawn({
            let (observer, ecs) = (observer.clone(), ecs.clone());
            async move { observer.observe(ecs.as_ref(), "c", "s000", Duration::ZERO).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        observer.record(&service("s001", 42));
        describing.await.unwrap();
        assert_eq!(ecs.batches().last().unwrap(), &["s000", "s001"]);
        let s001 = observer.observe(ecs.as_ref(), "c", "s001", Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!(s001.desired_count, 42);
    }
}
