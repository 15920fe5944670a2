//! Small statistics for the benchmark workloads: percentiles of a sample
//! (nearest-rank).

/// The `p`-th percentile (0..=100) of `sorted` by the nearest-rank method;
/// 0 for an empty sample.
pub fn percentile(sorted: &[u64], p: u32) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let p = u64::from(p.min(100));
    let n = sorted.len() as u64;
    // rank = ceil(p/100 * n), at least 1.
    let rank = (p * n).div_ceil(100).max(1);
    // rank <= n, so the index is in range (the `min` only guards it).
    let last = sorted.len() - 1;
    sorted[usize::try_from(rank - 1).map_or(last, |i| i.min(last))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&v, 100), 100);
        assert_eq!(percentile(&v, 0), 1);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[1, 2, 3], 50), 2);
    }
}
