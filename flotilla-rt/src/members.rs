//! Member ids and partitions of a replication group (boot protocol v3's
//! group record): member `i` is the `i`-th set bit of the record's
//! partition bitset.

/// The partition of member `member` in the bitset `members`.
pub fn partition_of(members: u64, member: u32) -> Option<u32> {
    let mut bits = members;
    for _ in 0..member {
        if bits == 0 {
            return None;
        }
        bits &= bits - 1;
    }
    (bits != 0).then(|| bits.trailing_zeros())
}

/// The member id of partition `partition` in the bitset `members`.
pub fn member_of(members: u64, partition: u32) -> Option<u32> {
    if partition >= 64 || members & (1 << partition) == 0 {
        return None;
    }
    Some((members & ((1 << partition) - 1)).count_ones())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_partitions_map_both_ways() {
        let set = 0b1010_0110u64;
        let parts: Vec<_> = (0..5).map(|m| partition_of(set, m)).collect();
        assert_eq!(parts, [Some(1), Some(2), Some(5), Some(7), None]);
        for m in 0..4 {
            let p = partition_of(set, m).expect("member");
            assert_eq!(member_of(set, p), Some(m));
        }
        assert_eq!(member_of(set, 0), None);
        assert_eq!(member_of(set, 64), None);
        assert_eq!(partition_of(1 << 63, 0), Some(63));
        assert_eq!(partition_of(0, 0), None);
    }
}
