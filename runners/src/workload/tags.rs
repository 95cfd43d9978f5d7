//! `spec.tags` propagation: the user's tags go on every AWS resource a
//! resource owns when it is created, and when `spec.tags` changes the
//! difference from what status says was applied is put on (and taken off)
//! every existing one. Mooring's own `mooring:*` tags are never touched here
//! (validation refuses that prefix in `spec.tags`).

use api_types::common::UserTags;
use api_types::status::AppliedTags;

use crate::cloud::Tags;

/// What changes from `applied` to `want`: tags to put (new or changed values)
/// and keys to remove. Empty when nothing changed.
pub(crate) fn diff(applied: &AppliedTags, want: &UserTags) -> (Tags, Vec<String>) {
    let put: Tags =
        want.iter().filter(|(k, v)| applied.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let remove: Vec<String> = applied.keys().filter(|k| !want.contains_key(*k)).cloned().collect();
    (put, remove)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_as_a_table() {
        let m = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Tags>();
        let cases = [
            (m(&[]), m(&[]), m(&[]), vec![]),
            (m(&[]), m(&[("team", "a")]), m(&[("team", "a")]), vec![]),
            (m(&[("team", "a")]), m(&[("team", "a")]), m(&[]), vec![]),
            (m(&[("team", "a")]), m(&[("team", "b")]), m(&[("team", "b")]), vec![]),
            (m(&[("team", "a"), ("cost", "x")]), m(&[("team", "a")]), m(&[]), vec!["cost".to_string()]),
        ];
        for (applied, want, put, remove) in cases {
            assert_eq!(diff(&applied, &want), (put, remove), "{applied:?} -> {want:?}");
        }
    }
}
