//! A fixed-bucket latency histogram. Observing costs a few comparisons and two `Cell`
//! writes; arbiters keep their own and they are added up when scraped.

use std::cell::Cell;

/// Upper bounds of the buckets, in microseconds (a last bucket catches everything above).
pub const BUCKETS_US: [u64; 15] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 5_000_000, 30_000_000,
];

const N: usize = BUCKETS_US.len() + 1;

/// One arbiter's histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [Cell<u64>; N],
    sum_us: Cell<u64>,
}

impl Histogram {
    pub fn observe(&self, us: u64) {
        let i = BUCKETS_US.iter().position(|&b| us <= b).unwrap_or(N - 1);
        self.counts[i].set(self.counts[i].get() + 1);
        self.sum_us.set(self.sum_us.get().wrapping_add(us));
    }

    pub fn snapshot(&self) -> HistogramSnap {
        let mut counts = [0; N];
        for (c, cell) in counts.iter_mut().zip(&self.counts) {
            *c = cell.get();
        }
        HistogramSnap {
            counts,
            sum_us: self.sum_us.get(),
        }
    }
}

/// A histogram's counts at one moment (per bucket, not cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistogramSnap {
    pub counts: [u64; N],
    pub sum_us: u64,
}

impl HistogramSnap {
    pub fn add(&mut self, other: &HistogramSnap) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.sum_us += other.sum_us;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (upper bound in seconds, or None for +Inf; cumulative count) per bucket.
    pub fn cumulative(&self) -> Vec<(Option<f64>, u64)> {
        let mut total = 0;
        self.counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                total += c;
                (BUCKETS_US.get(i).map(|us| *us as f64 / 1e6), total)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_right_buckets() {
        let h = Histogram::default();
        h.observe(50);
        h.observe(100);
        h.observe(101);
        h.observe(60_000_000);
        let s = h.snapshot();
        assert_eq!(s.counts[0], 2);
        assert_eq!(s.counts[1], 1);
        assert_eq!(s.counts[N - 1], 1);
        assert_eq!(s.count(), 4);
        let cum = s.cumulative();
        assert_eq!(cum[0], (Some(0.0001), 2));
        assert_eq!(cum.last(), Some(&(None, 4)));
        let mut total = s;
        total.add(&s);
        assert_eq!(total.count(), 8);
        assert_eq!(total.sum_us, 2 * (50 + 100 + 101 + 60_000_000));
    }
}
