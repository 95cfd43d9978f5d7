//! The API's [`Preview`]: renders a stored relay or worker into the task
//! definition the runners would register, and a node into its user data,
//! with the same code the reconcilers use. Lives here because the controller
//! is the crate that sees both the store and the runners.

use api_types::Kind;
use api_types::names;
use api_types::node::NodeSpec;
use api_types::relay::{RelaySpec, RelayStatus};
use api_types::worker::{WorkerSpec, WorkerStatus};
use desired_state::preview::{Preview, PreviewError, Rendered};
use desired_state::store::StoredResource;
use runners::render::{self, Owner};
use serde::de::DeserializeOwned;

/// What a worker's task definition names while its queue does not exist yet.
pub const QUEUE_URL_PENDING: &str = "(the queue URL, once the queue exists)";

/// Renders with the runners' code for one AWS Region.
#[derive(Debug, Clone)]
pub struct Renderer {
    /// The Region the task definitions name (log group, ARNs).
    pub region: String,
}

impl Preview for Renderer {
    fn render(&self, r: &StoredResource) -> Result<Rendered, PreviewError> {
        let uid = r.uid.to_string();
        match r.kind {
            Kind::Relay => {
                let spec: RelaySpec = read(r, "spec", &r.spec)?;
                let status: RelayStatus = read(r, "status", &r.status)?;
                let family = status.task_family.clone().unwrap_or_else(|| names::task_family(&r.namespace, &r.name));
                let owner = self.owner(r, &uid, &family, &spec.tags);
                let endpoint = status.cache.as_ref().and_then(|c| c.endpoint.as_deref());
                task_definition(r.kind, &render::relay_task(&owner, &spec, endpoint))
            }
            Kind::Worker => {
                let spec: WorkerSpec = read(r, "spec", &r.spec)?;
                let status: WorkerStatus = read(r, "status", &r.status)?;
                let family = status.task_family.clone().unwrap_or_else(|| names::task_family(&r.namespace, &r.name));
                let owner = self.owner(r, &uid, &family, &spec.tags);
                let queue_url = status.queue.as_ref().and_then(|q| q.url.as_deref()).unwrap_or(QUEUE_URL_PENDING);
                task_definition(r.kind, &render::worker_task(&owner, &spec, queue_url))
            }
            Kind::Node => {
                let spec: NodeSpec = read(r, "spec", &r.spec)?;
                Ok(Rendered::UserData { user_data: runners::provision::userdata::render(&r.namespace, &r.name, &spec) })
            }
            Kind::Policy | Kind::NodeSet => Err(PreviewError::NotRendered(r.kind)),
        }
    }
}

impl Renderer {
    fn owner<'a>(
        &'a self,
        r: &'a StoredResource,
        uid: &'a str,
        family: &'a str,
        tags: &'a api_types::common::UserTags,
    ) -> Owner<'a> {
        Owner { uid, namespace: &r.namespace, name: &r.name, family, user_tags: tags, region: &self.region }
    }
}

fn read<T: DeserializeOwned>(
    r: &StoredResource,
    field: &'static str,
    v: &serde_json::Value,
) -> Result<T, PreviewError> {
    // A resource never reconciled has `{}` or null as status: the defaults.
    let v = if v.is_null() { serde_json::json!({}) } else { v.clone() };
    serde_json::from_value(v).map_err(|e| PreviewError::Unreadable { kind: r.kind, field, message: e.to_string() })
}

fn task_definition(kind: Kind, input: &runners::cloud::ecs::TaskDefinitionInput) -> Result<Rendered, PreviewError> {
    let task_definition = serde_json::to_value(input).map_err(|e| PreviewError::Unreadable {
        kind,
        field: "rendering",
        message: e.to_string(),
    })?;
    Ok(Rendered::TaskDefinition { task_definition })
}

#[cfg(test)]
mod tests {
    use api_types::validate_document;
    use serde_json::{Value, json};

    use super::*;

    /// A stored resource as the store keeps it: the validated (defaulted) spec.
    fn stored(yaml: &str, status: Value) -> StoredResource {
        let doc: Value = serde_norway::from_str(yaml).expect("YAML");
        let doc = validate_document(doc).expect("a valid document");
        let meta = doc.metadata();
        StoredResource {
            spec: doc.spec_value(),
            status,
            ..crate::reconcile::test_row(doc.kind(), &meta.namespace, &meta.name)
        }
    }

    fn renderer() -> Renderer {
        Renderer { region: "eu-west-1".into() }
    }

    #[test]
    fn a_relay_renders_to_its_task_definition_in_the_recorded_family() {
        let relay = stored(include_str!("../../examples/relay-gateway.yaml"), json!({"taskFamily": "recorded-family"}));
        let Rendered::TaskDefinition { task_definition } = renderer().render(&relay).expect("rendered") else {
            panic!("a relay renders a task definition");
        };
        assert_eq!(task_definition["family"], "recorded-family");
        let text = task_definition.to_string();
        assert!(text.contains(&relay.spec["containers"][0]["image"].as_str().expect("an image").to_string()), "{text}");
        assert!(text.contains("eu-west-1"), "the log configuration names the Region: {text}");
    }

    #[test]
    fn a_worker_without_a_queue_yet_says_so_and_a_node_renders_user_data() {
        let worker = stored(include_str!("../../examples/worker-converter.yaml"), Value::Null);
        let Rendered::TaskDefinition { task_definition } = renderer().render(&worker).expect("rendered") else {
            panic!("a worker renders a task definition");
        };
        assert!(task_definition.to_string().contains(QUEUE_URL_PENDING));
        assert_eq!(task_definition["family"], names::task_family(&worker.namespace, &worker.name));

        let node = stored(include_str!("../../examples/node-pulse.yaml"), json!({}));
        let Rendered::UserData { user_data } = renderer().render(&node).expect("rendered") else {
            panic!("a node renders user data");
        };
        assert!(user_data.starts_with("#!"), "{user_data}");
    }

    #[test]
    fn an_unreadable_status_is_an_error_not_a_panic() {
        let relay = stored(include_str!("../../examples/relay-gateway.yaml"), json!({"replicas": "many"}));
        assert!(matches!(renderer().render(&relay), Err(PreviewError::Unreadable { field: "status", .. })));
    }
}
