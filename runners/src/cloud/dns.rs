//! Route53 private hosted zones: the DNS records a node set keeps for its
//! members (`pulse-1.pulse.internal`) and for the set as a whole.
//!
//! Contract (both implementations): names are lower case without the trailing
//! dot; TXT values are given and answered without their quotes; `records`
//! answers one page of the zone's record sets in Route53's order (names with
//! their labels reversed, compared as text with the trailing dot, so a name
//! and everything under it come together), from a cursor; record sets other
//! than plain A and TXT ones (a CNAME, an alias, a weighted record) are
//! answered as [`RecordType::Other`]; `change` applies its changes all
//! together or not at all (a CREATE of
//! a record set that exists, or a DELETE that does not match what exists,
//! fails the whole batch with [`ErrorKind::Invalid`](super::ErrorKind::Invalid));
//! a zone that does not exist is
//! [`ErrorKind::MissingReference`](super::ErrorKind::MissingReference).

use async_trait::async_trait;

use super::CloudResult;

/// AWS accepts at most this many changes in one ChangeResourceRecordSets.
pub const MAX_CHANGES: usize = 1000;

/// At most this many record sets in one page of ListResourceRecordSets.
pub const PAGE_SIZE: usize = 300;

/// The record types Mooring writes, and everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    /// A plain (simple routing, not alias) A record set.
    A,
    /// A plain TXT record set.
    Txt,
    /// Any other record set (another type, an alias, a routing policy):
    /// never Mooring's, and it holds its name.
    Other,
}

impl RecordType {
    /// The type as Route53 spells it (`OTHER` for the rest).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Txt => "TXT",
            RecordType::Other => "OTHER",
        }
    }
}

/// One record set: a name, a type, its values and TTL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordSet {
    /// Lower case, no trailing dot.
    pub name: String,
    /// Its type.
    pub kind: RecordType,
    /// Its TTL in seconds (0 for [`RecordType::Other`]).
    pub ttl: u32,
    /// Sorted; TXT values without quotes.
    pub values: Vec<String>,
}

/// Where a page of the zone's record sets starts: a name, and within it a
/// type and a set identifier, as Route53 hands them on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordCursor {
    /// The first name (in Route53's order) of the page.
    pub name: String,
    /// Route53's type (`A`, `CNAME`, ...), when the page starts inside a name.
    pub kind: Option<String>,
    /// The set identifier, when the page starts inside a routing policy.
    pub identifier: Option<String>,
}

impl RecordCursor {
    /// The first record set at or after `name`.
    pub fn at(name: &str) -> RecordCursor {
        RecordCursor { name: name.to_string(), ..Default::default() }
    }
}

/// One page of record sets, and where the next starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordPage {
    /// In Route53's order.
    pub records: Vec<RecordSet>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<RecordCursor>,
}

/// The key Route53 orders names by: labels reversed, with the trailing dot,
/// compared as text.
pub fn order_key(name: &str) -> String {
    let mut labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    labels.reverse();
    format!("{}.", labels.join("."))
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    /// Fails when a record set of that name and type exists.
    Create(RecordSet),
    /// Creates or replaces.
    Upsert(RecordSet),
    /// Fails unless the record set exists with exactly these values and TTL.
    Delete(RecordSet),
}

/// A DNS name as the facade speaks it: lower case, no trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// True when `name` is `suffix` or a name under it.
pub fn under(name: &str, suffix: &str) -> bool {
    name == suffix || name.strip_suffix(suffix).is_some_and(|head| head.ends_with('.'))
}

/// Route53, as Mooring uses it.
#[async_trait]
pub trait Dns: Send + Sync {
    /// One page of `zone_id`'s record sets from `from` (ListResourceRecordSets).
    async fn records(&self, zone_id: &str, from: &RecordCursor) -> CloudResult<RecordPage>;
    /// Applies `changes` as one batch (ChangeResourceRecordSets).
    async fn change(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_a_suffix() {
        let cases = [
            ("pulse.internal", "pulse.internal", true),
            ("pulse-1.pulse.internal", "pulse.internal", true),
            ("_mooring.pulse-1.pulse.internal", "pulse.internal", true),
            ("xpulse.internal", "pulse.internal", false),
            ("internal", "pulse.internal", false),
        ];
        for (name, suffix, want) in cases {
            assert_eq!(under(name, suffix), want, "{name} under {suffix}");
        }
        assert_eq!(normalize("Pulse-1.Pulse.Internal."), "pulse-1.pulse.internal");
    }

    #[test]
    fn a_name_and_everything_under_it_sort_together() {
        let mut names = [
            "pulse-0.internal",
            "pulse.internal",
            "_mooring.pulse-1.pulse.internal",
            "pulse0.internal",
            "a.pulse.internal",
            "internal",
        ];
        names.sort_by_key(|n| order_key(n));
        assert_eq!(
            names,
            [
                "internal",
                "pulse-0.internal",
                "pulse.internal",
                "a.pulse.internal",
                "_mooring.pulse-1.pulse.internal",
                "pulse0.internal"
            ]
        );
    }
}
