//! Writing the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;

use super::HistogramSnap;

/// A metrics page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Self {
        Exposition::default()
    }

    /// Starts a metric family with its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram's buckets, sum (seconds) and count.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnap) {
        for (le, n) in h.cumulative() {
            let le = le.map(|s| s.to_string()).unwrap_or_else(|| "+Inf".into());
            let _ = write!(self.out, "{name}_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {n}");
        }
        let _ = write!(self.out, "{name}_sum");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", h.sum_us as f64 / 1e6);
        let _ = write!(self.out, "{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", h.count());
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le.map(|l| ("le", l))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Histogram;

    #[test]
    fn writes_families_samples_and_histograms() {
        let mut e = Exposition::new();
        e.family("pgcorral_x_total", "counter", "Things.");
        e.sample(
            "pgcorral_x_total",
            &[("database", "a\"b"), ("user", "u")],
            3.0,
        );
        let h = Histogram::default();
        h.observe(200);
        e.histogram("pgcorral_t_seconds", &[("database", "d")], &h.snapshot());
        let text = e.finish();
        assert!(
            text.starts_with("# HELP pgcorral_x_total Things.\n# TYPE pgcorral_x_total counter\n")
        );
        assert!(
            text.contains("pgcorral_x_total{database=\"a\\\"b\",user=\"u\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("pgcorral_t_seconds_bucket{database=\"d\",le=\"0.0001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("pgcorral_t_seconds_bucket{database=\"d\",le=\"0.00025\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("pgcorral_t_seconds_bucket{database=\"d\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("pgcorral_t_seconds_count{database=\"d\"} 1\n"),
            "{text}"
        );
    }
}
