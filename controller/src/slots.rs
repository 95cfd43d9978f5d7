//! Node build slots from the store: the builds in flight are the ones node
//! statuses record as started and not finished, so a slot follows the build
//! whichever replica reconciles the node next (a shard that moved, a replica
//! that crashed), instead of living in one process's memory.

use std::collections::HashSet;

use desired_state::store::Store;
use runners::workload::BuildSlots;

/// [`BuildSlots`] answered by the store.
pub struct StoreBuildSlots {
    store: Store,
}

impl StoreBuildSlots {
    /// Slots counted in `store` (give it a small pool of its own).
    pub fn new(store: Store) -> StoreBuildSlots {
        StoreBuildSlots { store }
    }
}

#[async_trait::async_trait]
impl BuildSlots for StoreBuildSlots {
    async fn in_flight(&self) -> Result<HashSet<String>, String> {
        self.store.node_builds_in_flight().await.map(|t| t.into_iter().collect()).map_err(|e| e.to_string())
    }
}
