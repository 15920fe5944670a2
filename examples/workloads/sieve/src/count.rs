//! Counting primes in a range with a segmented sieve (pure: unit-tested on
//! the host with `cargo test`).

use alloc::vec;
use alloc::vec::Vec;

/// The number of primes `p` with `lo <= p < hi`.
pub fn primes_in(lo: u64, hi: u64) -> u64 {
    if hi <= lo.max(2) {
        return 0;
    }
    let lo = lo.max(2);
    let root = (hi - 1).isqrt();
    // The primes up to sqrt(hi - 1), by a plain sieve.
    let mut small = vec![true; usize::try_from(root + 1).unwrap_or(usize::MAX)];
    let mut base: Vec<u64> = Vec::new();
    for i in 2..=root {
        if small[i as usize] {
            base.push(i);
            let mut m = i * i;
            while m <= root {
                small[m as usize] = false;
                m += i;
            }
        }
    }
    // Cross their multiples off [lo, hi).
    let mut segment = vec![true; usize::try_from(hi - lo).unwrap_or(usize::MAX)];
    for &p in &base {
        let mut m = (p * p).max(lo.div_ceil(p) * p);
        while m < hi {
            segment[(m - lo) as usize] = false;
            m += p;
        }
    }
    segment.iter().filter(|&&prime| prime).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_counts() {
        assert_eq!(primes_in(0, 10), 4);
        assert_eq!(primes_in(0, 100), 25);
        assert_eq!(primes_in(0, 1_000_000), 78_498);
        assert_eq!(primes_in(10, 20), 4);
        assert_eq!(primes_in(2, 3), 1);
        assert_eq!(primes_in(5, 5), 0);
    }

    #[test]
    fn slices_add_up() {
        let cuts = [0, 1, 2, 3, 250_000, 500_001, 750_000, 1_000_000];
        let sum: u64 = cuts.windows(2).map(|w| primes_in(w[0], w[1])).sum();
        assert_eq!(sum, 78_498);
    }
}
