//! Field-level diffs for plans (`apply --dry-run`, `diff`), in the same dotted
//! path notation as validation errors.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One changed field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// `spec.containers[0].image`.
    pub path: String,
    /// `add`, `remove` or `replace`.
    pub op: DiffOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

/// The kind of a field change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffOp {
    Add,
    Remove,
    Replace,
}

/// Every leaf that differs between `old` and `new`. Objects are compared key by
/// key, lists index by index; a value that changes type is one replacement.
pub fn diff_documents(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<FieldChange>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                pair(p, a.get(k), b.get(k), out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                pair(p, a.get(i), b.get(i), out);
            }
        }
        (Value::Null, b) if !b.is_null() && path.is_empty() => walk_add(path, b, out),
        (a, b) if a != b => out.push(FieldChange {
            path: path.to_string(),
            op: DiffOp::Replace,
            from: Some(a.clone()),
            to: Some(b.clone()),
        }),
        _ => {}
    }
}

/// One member of an object or a list on both sides.
fn pair(path: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (old, new) {
        (Some(x), Some(y)) => walk(&path, x, y, out),
        (Some(x), None) => out.push(FieldChange { path, op: DiffOp::Remove, from: Some(x.clone()), to: None }),
        (None, Some(y)) => out.push(FieldChange { path, op: DiffOp::Add, from: None, to: Some(y.clone()) }),
        (None, None) => {}
    }
}

/// A whole new document: one `add` per top-level field of each section.
fn walk_add(path: &str, new: &Value, out: &mut Vec<FieldChange>) {
    walk(path, &Value::Object(Default::default()), new, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_name_the_changed_leaves() {
        let old =
            json!({"spec": {"containers": [{"image": "a:1", "port": 80}], "scaling": {"min": 1}}, "metadata": {}});
        let new = json!({"spec": {"containers": [{"image": "a:2", "port": 80}, {"image": "opa"}], "scaling": {}}, "metadata": {"labels": {"x": "y"}}});
        let d = diff_documents(&old, &new);
        let paths: Vec<(&str, DiffOp)> = d.iter().map(|c| (c.path.as_str(), c.op)).collect();
        assert_eq!(
            paths,
            vec![
                ("metadata.labels", DiffOp::Add),
                ("spec.containers[0].image", DiffOp::Replace),
                ("spec.containers[1]", DiffOp::Add),
                ("spec.scaling.min", DiffOp::Remove),
            ]
        );
        assert_eq!(d[1].from, Some(json!("a:1")));
        assert_eq!(d[1].to, Some(json!("a:2")));
        assert!(diff_documents(&new, &new).is_empty());
    }

    #[test]
    fn a_new_document_is_a_list_of_adds() {
        let d = diff_documents(&Value::Null, &json!({"metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}}));
        assert_eq!(d.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), vec!["metadata", "spec"]);
    }
}
