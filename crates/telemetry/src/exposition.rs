//! The Prometheus text format (0.0.4) from `prometheus-client`'s OpenMetrics output.
//!
//! `prometheus-client` writes only OpenMetrics, where a counter family is named without its
//! `_total` suffix and `info` is a type of its own. Scrapers that ask for the classic text format
//! (and `promtool check metrics`) read those as a counter without samples plus an untyped
//! `_total` series, or refuse the `info` type outright. This turns the one into the other.

/// Rewrites OpenMetrics text as the Prometheus text format: counter families take their
/// `_total` name, `info` families become gauges named `…_info`, `unknown` becomes `untyped`,
/// and `# UNIT` and `# EOF` lines are dropped. Samples are unchanged (they already carry the
/// suffixed names).
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (family, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            if let Some((help_name, help)) = pending_help.take() {
                if help_name == name {
                    out.push_str(&format!("# HELP {family} {help}\n"));
                }
            }
            out.push_str(&format!("# TYPE {family} {kind}\n"));
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_infos_take_their_classic_names() {
        let om = "# HELP app_requests Requests.\n\
                  # TYPE app_requests counter\n\
                  app_requests_total{code=\"200\"} 3\n\
                  # HELP app_latency_seconds Latency.\n\
                  # TYPE app_latency_seconds histogram\n\
                  # UNIT app_latency_seconds seconds\n\
                  app_latency_seconds_sum 0.5\n\
                  app_latency_seconds_count 1\n\
                  app_latency_seconds_bucket{le=\"+Inf\"} 1\n\
                  # HELP app_build Build.\n\
                  # TYPE app_build info\n\
                  app_build_info{version=\"1\"} 1\n\
                  # HELP app_queue Queue.\n\
                  # TYPE app_queue gauge\n\
                  app_queue 0\n\
                  # EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP app_requests_total Requests.\n\
             # TYPE app_requests_total counter\n\
             app_requests_total{code=\"200\"} 3\n\
             # HELP app_latency_seconds Latency.\n\
             # TYPE app_latency_seconds histogram\n\
             app_latency_seconds_sum 0.5\n\
             app_latency_seconds_count 1\n\
             app_latency_seconds_bucket{le=\"+Inf\"} 1\n\
             # HELP app_build_info Build.\n\
             # TYPE app_build_info gauge\n\
             app_build_info{version=\"1\"} 1\n\
             # HELP app_queue Queue.\n\
             # TYPE app_queue gauge\n\
             app_queue 0\n"
        );
    }
}
