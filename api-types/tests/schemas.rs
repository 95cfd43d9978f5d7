//! The JSON Schemas: one per kind, well-formed, and the committed copies under
//! `api-types/schemas/` are current. Run with `UPDATE_SCHEMAS=1` to rewrite them.

use std::path::PathBuf;

use api_types::Kind;
use api_types::schema::schema_for_kind;

fn committed_path(kind: Kind) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas").join(format!("{}.json", kind.as_str().to_lowercase()))
}

#[test]
fn each_kind_has_a_schema_that_compiles() {
    for kind in Kind::ALL {
        let schema = schema_for_kind(kind);
        assert_eq!(schema["title"], kind.as_str());
        assert_eq!(schema["properties"]["kind"]["const"], kind.as_str());
        assert_eq!(schema["properties"]["apiVersion"]["const"], "mooring/v1");
        assert_eq!(schema["additionalProperties"], false, "{kind}: unknown top-level fields must be refused");
        let required: Vec<&str> = schema["required"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
        for f in ["apiVersion", "kind", "metadata", "spec"] {
            assert!(required.contains(&f), "{kind}: {f} should be required, got {required:?}");
        }
        assert!(jsonschema::meta::is_valid(&schema), "{kind}: not a valid JSON Schema");
        // No null branches: optional fields are absent, not null.
        assert!(!schema.to_string().contains(r#""type":"null""#), "{kind}: schema still allows null");
    }
}

#[test]
fn schemas_carry_defaults_and_descriptions() {
    let worker = schema_for_kind(Kind::Worker);
    let defs = &worker["$defs"];
    assert_eq!(defs["WorkerScaling"]["properties"]["queueDepthTarget"]["default"], 500);
    assert!(defs["WorkerScaling"]["properties"]["cpuTargetPercent"].get("default").is_none(), "off unless set");
    assert!(
        defs["WorkerScaling"]["properties"]["queueDepthTarget"]["description"].as_str().unwrap().contains("Backlog")
    );
    let relay = schema_for_kind(Kind::Relay);
    assert_eq!(relay["$defs"]["RelayScaling"]["properties"]["cpuTargetPercent"]["default"], 70);
}

#[test]
fn committed_schema_files_are_current() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    for kind in Kind::ALL {
        let path = committed_path(kind);
        let fresh = serde_json::to_string_pretty(&schema_for_kind(kind)).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == fresh => {}
            _ => stale.push(path.display().to_string()),
        }
    }
    assert!(
        stale.is_empty(),
        "stale schema files {stale:?}; run `UPDATE_SCHEMAS=1 cargo test -p api-types --test schemas`"
    );
}
