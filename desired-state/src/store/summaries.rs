//! What dashboards read of every resource: its conditions, replica counts and
//! generations, without the rest of its spec and status. The resource gauges
//! of `/metrics` are built from these rows.

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sqlx::types::Json;

use super::{Store, StoreError};

/// One resource as the fleet gauges see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResourceSummary {
    /// The kind (`Relay`, ...), as stored.
    pub kind: String,
    pub namespace: String,
    /// The resource's name in its namespace and kind.
    pub name: String,
    /// The spec's generation.
    pub generation: i64,
    /// The generation the controller last acted on (`status.observedGeneration`).
    pub observed_generation: Option<i64>,
    /// `(type, status)` of each condition in `status.conditions`, in order.
    pub conditions: Json<Vec<(String, String)>>,
    /// `status.replicas.desired` and `.running` (relays and workers).
    pub replicas_desired: Option<i64>,
    pub replicas_running: Option<i64>,
}

impl Store {
    /// Every resource of `kinds` (including those being deleted), reduced to
    /// what the fleet gauges show, as a stream (a fleet of 100,000 is never
    /// held twice). JSON fields of another type than expected (a string, a
    /// fraction, a number beyond 64 bits) read as absent.
    pub fn resource_summaries(&self, kinds: &[&str]) -> BoxStream<'_, Result<ResourceSummary, StoreError>> {
        let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        sqlx::query_as(
            "SELECT kind, namespace, name, generation, \
                 CASE WHEN (status->>'observedGeneration') ~ '^-?[0-9]{1,18}$' \
                     THEN (status->>'observedGeneration')::bigint END AS observed_generation, \
                 COALESCE((SELECT jsonb_agg(jsonb_build_array(c->>'type', c->>'status')) \
                     FROM jsonb_array_elements(CASE WHEN jsonb_typeof(status->'conditions') = 'array' \
                         THEN status->'conditions' ELSE '[]'::jsonb END) c \
                     WHERE jsonb_typeof(c->'type') = 'string' AND jsonb_typeof(c->'status') = 'string'), \
                     '[]'::jsonb) AS conditions, \
                 CASE WHEN (status->'replicas'->>'desired') ~ '^-?[0-9]{1,18}$' \
                     THEN (status->'replicas'->>'desired')::bigint END AS replicas_desired, \
                 CASE WHEN (status->'replicas'->>'running') ~ '^-?[0-9]{1,18}$' \
                     THEN (status->'replicas'->>'running')::bigint END AS replicas_running \
             FROM resources WHERE kind = ANY($1) ORDER BY kind, namespace, name",
        )
        .bind(kinds)
        .fetch(&self.pool)
        .map_err(StoreError::from)
        .boxed()
    }
}
