//! The admission step every write handler runs after validation and before
//! it writes: Policy documents must compile, and every other document must
//! pass the stored policies (see [`crate::admission`]).

use std::collections::BTreeSet;

use api_types::{AnyResource, FieldError, ValidationErrors};

use super::SharedState;
use super::error::ApiError;
use crate::admission::{CompiledPolicy, Violation};
use crate::store::ChangeSource;

/// How violations of a batch are named: `items[i].` before each field path for
/// a bulk apply, nothing for a single document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paths {
    Single,
    Indexed,
}

impl Paths {
    fn at(self, index: usize, field: &str) -> String {
        match (self, field.is_empty()) {
            (Paths::Single, _) => field.to_string(),
            (Paths::Indexed, true) => format!("items[{index}]"),
            (Paths::Indexed, false) => format!("items[{index}].{field}"),
        }
    }
}

/// Judges `docs`, about to be written by `source`: 422 `Invalid` for a Policy
/// whose Rego does not compile, 422 `PolicyViolation` with every violation
/// otherwise. The policies are those stored now, before any of `docs` is
/// written, so a batch holding a new Policy is judged by the old ones.
pub(crate) async fn admit(
    state: &SharedState,
    docs: &[&AnyResource],
    source: &ChangeSource,
    paths: Paths,
) -> Result<(), ApiError> {
    let mut invalid = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if let AnyResource::Policy(p) = doc
            && let Err(e) = CompiledPolicy::compile(p)
        {
            invalid.push(FieldError { field: paths.at(i, e.field()), message: e.to_string() });
        }
    }
    if !invalid.is_empty() {
        return Err(ApiError::invalid(ValidationErrors(invalid)));
    }
    let namespaces: BTreeSet<String> =
        docs.iter().filter(|d| d.kind().is_reconciled()).map(|d| d.metadata().namespace.clone()).collect();
    if namespaces.is_empty() {
        return Ok(());
    }
    let policies = state.admission.policies_for(&namespaces).await?;
    if policies.is_empty() {
        return Ok(());
    }
    let violations: Vec<Violation> = docs
        .iter()
        .enumerate()
        .flat_map(|(i, doc)| {
            policies.review(doc, source).into_iter().map(move |v| Violation { field: paths.at(i, &v.field), ..v })
        })
        .collect();
    if violations.is_empty() { Ok(()) } else { Err(ApiError::policy_violation(violations)) }
}
