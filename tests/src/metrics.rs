//! Reading Prometheus text exposition.

/// The value of the series `name` whose labels include every `(key, value)` of
/// `labels`, summed when several series match (so `&[]` sums a whole family).
/// `None` when no series matches. Counters are exposed with a `_total` suffix.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(p) => p,
            None => continue,
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let parsed = parse_labels(series_labels);
        if !labels.iter().all(|(k, v)| parsed.iter().any(|(pk, pv)| pk == k && pv == v)) {
            continue;
        }
        if let Ok(v) = value.parse::<f64>() {
            *sum.get_or_insert(0.0) += v;
        }
    }
    sum
}

/// `a="x",b="y"` → pairs (no escaped quotes or commas in values, which our labels never have).
fn parse_labels(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    #[test]
    fn reads_series() {
        let text = "# HELP mooring_leases_held x\n# TYPE mooring_leases_held gauge\nmooring_leases_held 4\n\
                    mooring_reconcile_total{kind=\"Relay\",result=\"success\"} 7\n\
                    mooring_reconcile_total{kind=\"Worker\",result=\"success\"} 2\n";
        assert_eq!(metric_value(text, "mooring_leases_held", &[]), Some(4.0));
        assert_eq!(metric_value(text, "mooring_reconcile_total", &[("kind", "Relay")]), Some(7.0));
        assert_eq!(metric_value(text, "mooring_reconcile_total", &[]), Some(9.0));
        assert_eq!(metric_value(text, "mooring_reconcile_total", &[("kind", "Node")]), None);
        assert_eq!(metric_value(text, "mooring_leases", &[]), None);
    }
}
