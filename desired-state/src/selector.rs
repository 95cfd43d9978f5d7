//! Kubernetes label selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
//! `a notin (x)`, `a` (exists), `!a` (does not exist), comma-separated, all of
//! which must hold.

use std::collections::BTreeMap;

use sqlx::{Postgres, QueryBuilder};

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed selector; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(pub Vec<Requirement>);

/// A selector that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {selector:?}: {reason}")]
pub struct SelectorError {
    pub selector: String,
    pub reason: String,
}

impl Selector {
    /// Parses `app=web,tier!=db,env in (prod,staging),!legacy`.
    pub fn parse(s: &str) -> Result<Selector, SelectorError> {
        let err = |reason: &str| SelectorError { selector: s.to_string(), reason: reason.to_string() };
        let mut reqs = Vec::new();
        for part in split_top_level(s).map_err(|r| err(&r))? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key_of(key.trim()).map_err(|r| err(&r))?)
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(key_of(k.trim()).map_err(|r| err(&r))?, value_of(v.trim()).map_err(|r| err(&r))?)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(key_of(k.trim()).map_err(|r| err(&r))?, value_of(v.trim()).map_err(|r| err(&r))?)
            } else if let Some((k, rest)) = split_set_op(part, " notin ") {
                Requirement::NotIn(key_of(k).map_err(|r| err(&r))?, set_of(rest).map_err(|r| err(&r))?)
            } else if let Some((k, rest)) = split_set_op(part, " in ") {
                Requirement::In(key_of(k).map_err(|r| err(&r))?, set_of(rest).map_err(|r| err(&r))?)
            } else {
                Requirement::Exists(key_of(part).map_err(|r| err(&r))?)
            };
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|x| !vs.contains(x)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }

    /// Appends ` AND …` conditions over the `labels` jsonb column.
    pub fn push_sql(&self, b: &mut QueryBuilder<Postgres>) {
        for r in &self.0 {
            match r {
                Requirement::Equals(k, v) => {
                    b.push(" AND labels @> ").push_bind(serde_json::json!({ k: v }));
                }
                Requirement::NotEquals(k, v) => {
                    b.push(" AND NOT labels @> ").push_bind(serde_json::json!({ k: v }));
                }
                Requirement::In(k, vs) => {
                    b.push(" AND labels ->> ").push_bind(k.clone()).push(" = ANY(").push_bind(vs.clone()).push(")");
                }
                Requirement::NotIn(k, vs) => {
                    b.push(" AND (labels ->> ")
                        .push_bind(k.clone())
                        .push(") IS DISTINCT FROM ALL(")
                        .push_bind(vs.clone())
                        .push(")");
                }
                Requirement::Exists(k) => {
                    b.push(" AND labels ? ").push_bind(k.clone());
                }
                Requirement::NotExists(k) => {
                    b.push(" AND NOT labels ? ").push_bind(k.clone());
                }
            }
        }
    }
}

fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced ')'".into());
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn split_set_op<'a>(part: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let i = part.find(op)?;
    Some((part[..i].trim(), part[i + op.len()..].trim()))
}

fn set_of(s: &str) -> Result<Vec<String>, String> {
    let inner = s.strip_prefix('(').and_then(|x| x.strip_suffix(')')).ok_or("a set must be written (a,b)")?;
    inner.split(',').map(|v| value_of(v.trim())).collect()
}

fn key_of(k: &str) -> Result<String, String> {
    let ok = !k.is_empty()
        && k.len() <= 317
        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok { Ok(k.to_string()) } else { Err(format!("{k:?} is not a label key")) }
}

fn value_of(v: &str) -> Result<String, String> {
    let ok = v.len() <= 63 && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(v.to_string()) } else { Err(format!("{v:?} is not a label value")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_and_matches_every_operator() {
        let s = Selector::parse("app=web, tier!=db,env in (prod, staging),team notin (x),owner,!legacy").unwrap();
        assert_eq!(s.0.len(), 6);
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod"), ("owner", "me")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("owner", "me")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("owner", "me"), ("legacy", "")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("owner", "me"), ("tier", "db")])));
        assert!(Selector::parse("").unwrap().matches(&labels(&[])));
        assert_eq!(Selector::parse("a==b").unwrap().0, vec![Requirement::Equals("a".into(), "b".into())]);
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["a in (x", "a in x", "a=b c", "=x", "a=(b)", "a b"] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
