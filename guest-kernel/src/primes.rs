//! Prime counting for the `compute` workload: a segmented sieve of
//! Eratosthenes over odd numbers. Memory is O(sqrt n) plus one fixed
//! segment, so any `n` the layout allows (up to 10^8) fits a small heap.

use alloc::vec;
use alloc::vec::Vec;

/// Odd numbers covered by one segment.
const SEGMENT: usize = 32 * 1024;

/// The number of primes `p` with `p < n`; `None` if the base primes'
/// sieve (`sqrt(n)` bytes) cannot be indexed on this target (only where
/// `usize` is narrower than 32 bits).
pub fn count_primes_below(n: u64) -> Option<u64> {
    if n <= 2 {
        return Some(0);
    }
    // Base primes: odd primes up to sqrt(n - 1), by a plain sieve.
    let limit = usize::try_from(isqrt(n - 1)).ok()?;
    let base = small_odd_primes(limit);
    let mut count = 1u64; // the prime 2
    let mut composite = vec![false; SEGMENT];
    // Segment k covers the odd numbers low, low + 2, ..., below `high`.
    let mut low = 3u64;
    while low < n {
        let high = n.min(low.saturating_add(2 * SEGMENT as u64));
        // At most SEGMENT (`high - low <= 2 * SEGMENT`), so it fits.
        let len = usize::try_from((high - low).div_ceil(2)).unwrap_or(SEGMENT);
        composite[..len].fill(false);
        for &p in &base {
            let p2 = p * p;
            if p2 >= high {
                break;
            }
            // First odd multiple of p that is >= max(p*p, low).
            let mut m = if p2 >= low { p2 } else { low.div_ceil(p) * p };
            if m % 2 == 0 {
                m += p;
            }
            // Index i stands for low + 2i: odd multiples of p are p apart,
            // and m < high exactly while i < len.
            let (Ok(mut i), Ok(step)) = (usize::try_from((m - low) / 2), usize::try_from(p)) else {
                continue; // beyond any index: nothing to mark here
            };
            while i < len {
                composite[i] = true;
                i += step;
            }
        }
        count += composite[..len].iter().filter(|&&c| !c).count() as u64;
        // `high` is odd unless it is `n`, which ends the loop.
        low = high;
    }
    Some(count)
}

/// Odd primes `p <= limit`.
fn small_odd_primes(limit: usize) -> Vec<u64> {
    let mut composite = vec![false; limit + 1];
    let mut primes = Vec::new();
    let mut i = 3;
    while i <= limit {
        if !composite[i] {
            primes.push(i as u64);
            let mut m = i * i;
            while m <= limit {
                composite[m] = true;
                m += 2 * i;
            }
        }
        i += 2;
    }
    primes
}

/// Floor of the square root.
fn isqrt(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    // Newton's method from above.
    let mut x = n;
    let mut y = x.div_ceil(2);
    while y < x {
        x = y;
        y = (x + n / x) / 2;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(n: u64) -> u64 {
        (2..n)
            .filter(|&k| (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0))
            .count() as u64
    }

    #[test]
    fn small_n_match_trial_division() {
        for n in 0..2000 {
            assert_eq!(count_primes_below(n), Some(naive(n)), "n = {n}");
        }
    }

    #[test]
    fn segment_boundaries() {
        for n in [65_535, 65_536, 65_537, 65_539, 131_071, 131_072, 196_613] {
            assert_eq!(count_primes_below(n), Some(naive(n)), "n = {n}");
        }
    }

    #[test]
    fn known_counts() {
        assert_eq!(count_primes_below(10), Some(4));
        assert_eq!(count_primes_below(100), Some(25));
        assert_eq!(count_primes_below(1_000_000), Some(78_498));
        assert_eq!(count_primes_below(10_000_000), Some(664_579));
    }

    #[test]
    fn isqrt_is_exact() {
        for n in 0..10_000u64 {
            let r = isqrt(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n, "n = {n}");
        }
        assert_eq!(isqrt(u64::MAX), u64::from(u32::MAX));
    }
}
