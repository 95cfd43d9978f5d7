//! The canonical spec hash: stable under key order and explicit defaults, and
//! different for any change of a spec field.

use api_types::{AnyResource, Kind};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

fn doc(kind: Kind, spec: Value) -> Value {
    json!({"apiVersion": "mooring/v1", "kind": kind.as_str(), "metadata": {"name": "x"}, "spec": spec})
}

fn hash(kind: Kind, spec: &Value) -> String {
    AnyResource::from_value(kind, doc(kind, spec.clone())).expect("deserializes").spec_hash().0
}

/// Random-ish specs of every kind.
fn spec_strategy() -> impl Strategy<Value = (Kind, Value)> {
    let env = prop::collection::btree_map("[A-Z][A-Z0-9_]{0,6}", "[a-z0-9]{0,8}", 0..4);
    let worker =
        (env.clone(), 0u32..5, 5u32..50, 1u32..2000, prop::bool::ANY).prop_map(|(env, min, max, depth, fifo)| {
            let mut queue = json!({"deadLetter": {"maxReceiveCount": 3}});
            if fifo {
                queue = json!({"fifo": true, "name": "jobs.fifo"});
            }
            (
                Kind::Worker,
                json!({
                    "cluster": "batch",
                    "container": {"name": "w", "image": "ghcr.io/acme/w:1", "env": env},
                    "queue": queue,
                    "scaling": {"min": min, "max": max, "queueDepthTarget": depth}
                }),
            )
        });
    let relay = (env.clone(), 1u32..4, prop::bool::ANY).prop_map(|(env, n, lb)| {
        let containers: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("c{i}"), "image": "nginx:1.27", "port": 8000 + i, "env": env.clone()}))
            .collect();
        let mut spec = json!({"cluster": "prod", "containers": containers, "scaling": {"min": 1, "max": 3}});
        if lb {
            spec["loadBalancer"] = json!({"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/a/0123abcd", "containerPort": 8000});
            spec["network"] = json!({"subnets": ["subnet-0a1b2c3d"]});
        }
        (Kind::Relay, spec)
    });
    let node = (env, 1u32..1000, prop::option::of(3000u32..16000)).prop_map(|(env, size, iops)| {
        let mut dv = json!({"sizeGiB": size});
        if let Some(i) = iops {
            dv["iops"] = json!(i);
        }
        (
            Kind::Node,
            json!({
                "software": {"name": "pulse", "version": "1", "artifact": "s3://bucket-a/p.tgz"},
                "instanceType": "t3.micro", "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d",
                "dataVolume": dv, "env": env, "healthCheck": {"port": 8080}
            }),
        )
    });
    prop_oneof![worker, relay, node]
}

/// Serializes JSON with object keys in an order chosen by `seed`.
fn shuffled_json(v: &Value, seed: &mut u64) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            // Fisher–Yates with a small LCG: deterministic per seed.
            for i in (1..keys.len()).rev() {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = (*seed >> 33) as usize % (i + 1);
                keys.swap(i, j);
            }
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), shuffled_json(&m[k], seed)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(|x| shuffled_json(x, seed)).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// Every leaf of `full` as a JSON pointer.
fn leaves(v: &Value, prefix: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => m.iter().for_each(|(k, x)| leaves(x, format!("{prefix}/{k}"), out)),
        Value::Array(a) if !a.is_empty() => {
            a.iter().enumerate().for_each(|(i, x)| leaves(x, format!("{prefix}/{i}"), out))
        }
        _ => out.push(prefix),
    }
}

/// Copies the values at `pointers` from `full` into `sparse`, creating objects on
/// the way (arrays are copied whole, since their items cannot be half-present).
fn spell_out(sparse: &mut Value, full: &Value, pointer: &str) {
    let mut parts = pointer.trim_start_matches('/').split('/').peekable();
    let (mut s, mut f) = (sparse, full);
    while let Some(p) = parts.next() {
        let Some(fv) = f.get(p).or_else(|| p.parse::<usize>().ok().and_then(|i| f.get(i))) else { return };
        if fv.is_array() || parts.peek().is_none() {
            let Some(obj) = s.as_object_mut() else { return };
            obj.entry(p.to_string()).or_insert_with(|| fv.clone());
            return;
        }
        let Some(obj) = s.as_object_mut() else { return };
        s = obj.entry(p.to_string()).or_insert_with(|| Value::Object(Map::new()));
        f = fv;
    }
}

fn mutate(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) => json!(n.as_u64().map(|x| x + 1).unwrap_or(1)),
        Value::String(s) => Value::String(format!("{s}x")),
        Value::Array(_) => json!([]),
        Value::Object(_) => json!({"Z": "z"}),
        Value::Null => json!(1),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn key_order_does_not_change_the_hash((kind, spec) in spec_strategy(), seed in any::<u64>()) {
        let mut s = seed;
        let text = shuffled_json(&spec, &mut s);
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(hash(kind, &spec), hash(kind, &reparsed));
    }

    #[test]
    fn spelling_out_defaults_does_not_change_the_hash((kind, spec) in spec_strategy(), picks in prop::collection::vec(any::<Index>(), 0..12)) {
        let full = AnyResource::from_value(kind, doc(kind, spec.clone())).unwrap().spec_value();
        let mut paths = Vec::new();
        leaves(&full, String::new(), &mut paths);
        let mut explicit = spec.clone();
        for p in &picks {
            spell_out(&mut explicit, &full, &paths[p.index(paths.len())]);
        }
        prop_assert_eq!(hash(kind, &spec), hash(kind, &explicit));
        // The fully spelled-out spec too.
        prop_assert_eq!(hash(kind, &spec), hash(kind, &full));
    }

    #[test]
    fn changing_any_field_changes_the_hash((kind, spec) in spec_strategy(), pick in any::<Index>()) {
        let full = AnyResource::from_value(kind, doc(kind, spec.clone())).unwrap().spec_value();
        let mut paths = Vec::new();
        leaves(&full, String::new(), &mut paths);
        let path = &paths[pick.index(paths.len())];
        let mut changed = full.clone();
        let target = changed.pointer_mut(path).unwrap();
        *target = mutate(target);
        // Some mutations do not deserialize (an enum value plus "x"); those are not specs.
        let parsed = AnyResource::from_value(kind, doc(kind, changed.clone()));
        prop_assume!(parsed.is_ok());
        let parsed = parsed.unwrap();
        // A mutation that the typed form normalizes away (e.g. an empty map that
        // is the default) is not a change of the spec.
        prop_assume!(parsed.spec_value() != full);
        prop_assert_ne!(hash(kind, &spec), parsed.spec_hash().0, "changing {} did not change the hash", path);
    }
}

#[test]
fn the_hash_is_64_hex_digits_and_pinned() {
    let spec = json!({"cluster": "batch", "container": {"name": "w", "image": "ghcr.io/acme/w:1"}});
    let h = hash(Kind::Worker, &spec);
    assert_eq!(h.len(), 64);
    assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
    // Pinned: a change here means every stored revision's hash changes meaning.
    // Update it only together with a migration note.
    let again = hash(
        Kind::Worker,
        &serde_json::from_str::<Value>(r#"{"container":{"image":"ghcr.io/acme/w:1","name":"w"},"cluster":"batch"}"#)
            .unwrap(),
    );
    assert_eq!(h, again);
}
