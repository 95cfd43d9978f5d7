//! A relay's drain check: with `deployment.drainSeconds` set, every task gets
//! that long to finish in-flight requests once ECS stops it (`stopTimeout`).
//! The load balancer must keep sending nothing new to a deregistered task
//! for at least as long, or requests are cut during every deployment and
//! scale-in. The target groups are the user's: Mooring reads their
//! deregistration delay (once per generation) and never changes it; a shorter
//! one is reported as `Advisory=True`, reason `DeregistrationDelayShort`.

use api_types::condition::{Condition, ConditionStatus, ConditionType, reason};
use api_types::relay::RelayStatus;

use super::relay::RelayTarget;
use super::{Calls, Workloads};
use crate::cloud::TargetGroups;
use crate::reconcile::{ReconcileError, Reconciled};

/// The advice for `drain` seconds against each group's delay (`None`: the
/// group could not be found, so there is nothing to compare).
pub(super) fn advice(drain: u32, delays: &[(String, Option<u32>)]) -> Option<String> {
    let short: Vec<String> =
        delays.iter().filter_map(|(arn, d)| d.filter(|d| *d < drain).map(|d| format!("{arn} ({d} s)"))).collect();
    (!short.is_empty()).then(|| {
        format!(
            "target group {} deregisters tasks sooner than deployment.drainSeconds ({drain} s): raise its \
             deregistration_delay.timeout_seconds, or requests in flight are cut when tasks stop",
            short.join(", ")
        )
    })
}

impl Workloads {
    /// Sets `Advisory` from the drain check when the spec asks for one and
    /// this generation was not checked yet; clears a stale one otherwise.
    pub(super) async fn drain_check(
        &self,
        calls: &Calls<'_>,
        t: &RelayTarget<'_>,
        r: &mut Reconciled<RelayStatus>,
    ) -> Result<(), ReconcileError> {
        let (g, now) = (t.generation, t.now);
        let last = t.status.conditions.iter().find(|c| c.type_ == ConditionType::Advisory);
        let (Some(drain), Some(lb)) = (t.spec.deployment.drain_seconds, &t.spec.load_balancer) else {
            if last.is_some_and(|c| c.status == ConditionStatus::True) {
                r.conditions.push(Condition::advisory(None, g, now));
            }
            return Ok(());
        };
        if last.is_some_and(|c| c.observed_generation == Some(g)) && !t.fresh {
            return Ok(());
        }
        let mut delays = vec![];
        for arn in std::iter::once(&lb.target_group_arn).chain(lb.alternate_target_group_arn.as_ref()) {
            delays.push((arn.clone(), calls.targets.deregistration_delay(arn).await?));
        }
        let advice = advice(drain, &delays);
        r.conditions.push(Condition::advisory(advice.map(|m| (reason::DEREGISTRATION_DELAY_SHORT, m)), g, now));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_that_deregisters_sooner_than_tasks_drain_is_named() {
        let d = |arn: &str, s: Option<u32>| (arn.to_string(), s);
        // (drain, delays, groups named)
        type Delays = Vec<(String, Option<u32>)>;
        let table: [(u32, Delays, &[&str]); 5] = [
            (30, vec![d("tg/a", Some(300))], &[]),
            (30, vec![d("tg/a", Some(30))], &[]),
            (60, vec![d("tg/a", Some(30))], &["tg/a (30 s)"]),
            (60, vec![d("tg/a", Some(300)), d("tg/b", Some(10))], &["tg/b (10 s)"]),
            (60, vec![d("tg/gone", None)], &[]),
        ];
        for (drain, delays, named) in table {
            let got = advice(drain, &delays);
            assert_eq!(got.is_some(), !named.is_empty(), "{drain} {delays:?}: {got:?}");
            for n in named {
                assert!(got.as_deref().unwrap_or_default().contains(n), "{got:?}");
            }
        }
    }
}
