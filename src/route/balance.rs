//! Picking one server among the eligible ones: random, round robin, or least outstanding.
//!
//! Only eligible servers are counted, so a banned server's share spreads evenly over all the
//! others instead of landing on the next one in line (the PgCat lesson).

use crate::config::LoadBalancing;
use rand::Rng;

/// Picks one of the servers for which `eligible(i)` holds, among `0..n`. `counter` is the
/// round-robin position (advanced here); `outstanding(i)` is server i's checked-out count.
pub fn pick(
    strategy: LoadBalancing,
    n: usize,
    eligible: impl Fn(usize) -> bool,
    outstanding: impl Fn(usize) -> usize,
    counter: &mut usize,
    rng: &mut impl Rng,
) -> Option<usize> {
    let count = (0..n).filter(|&i| eligible(i)).count();
    if count == 0 {
        return None;
    }
    let nth = |k: usize| (0..n).filter(|&i| eligible(i)).nth(k);
    match strategy {
        LoadBalancing::Random => nth(rng.gen_range(0..count)),
        LoadBalancing::RoundRobin => {
            let k = *counter % count;
            *counter = counter.wrapping_add(1);
            nth(k)
        }
        LoadBalancing::LeastOutstanding => {
            let least = (0..n).filter(|&i| eligible(i)).map(&outstanding).min()?;
            let ties = (0..n)
                .filter(|&i| eligible(i) && outstanding(i) == least)
                .count();
            let k = rng.gen_range(0..ties);
            (0..n)
                .filter(|&i| eligible(i) && outstanding(i) == least)
                .nth(k)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn counts(strategy: LoadBalancing, eligible: &[bool], rounds: usize) -> Vec<usize> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut counter = 0;
        let mut seen = vec![0; eligible.len()];
        for _ in 0..rounds {
            let i = pick(
                strategy,
                eligible.len(),
                |i| eligible[i],
                |_| 0,
                &mut counter,
                &mut rng,
            )
            .unwrap();
            seen[i] += 1;
        }
        seen
    }

    #[test]
    fn round_robin_is_exact_and_spreads_a_banned_servers_share() {
        assert_eq!(
            counts(LoadBalancing::RoundRobin, &[true, true, true], 300),
            [100, 100, 100]
        );
        assert_eq!(
            counts(LoadBalancing::RoundRobin, &[true, false, true, true], 300),
            [100, 0, 100, 100]
        );
    }

    #[test]
    fn random_spreads_roughly_evenly_over_eligible_servers() {
        let c = counts(LoadBalancing::Random, &[true, false, true, true], 3000);
        assert_eq!(c[1], 0);
        for i in [0, 2, 3] {
            assert!((800..1200).contains(&c[i]), "{c:?}");
        }
    }

    #[test]
    fn least_outstanding_prefers_the_least_busy() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let busy = [5, 1, 3];
        let mut c = 0;
        for _ in 0..20 {
            assert_eq!(
                pick(
                    LoadBalancing::LeastOutstanding,
                    3,
                    |_| true,
                    |i| busy[i],
                    &mut c,
                    &mut rng
                ),
                Some(1)
            );
        }
        assert_eq!(
            pick(
                LoadBalancing::LeastOutstanding,
                3,
                |i| i != 1,
                |i| busy[i],
                &mut c,
                &mut rng
            ),
            Some(2)
        );
    }

    #[test]
    fn nothing_eligible_is_none() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut c = 0;
        assert_eq!(
            pick(LoadBalancing::Random, 3, |_| false, |_| 0, &mut c, &mut rng),
            None
        );
    }
}
