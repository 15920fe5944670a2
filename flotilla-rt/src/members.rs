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

/// The links of an adjacency table (`GroupInfo::adjacency`) as member
/// pairs `(a, b)` with `a < b`, in increasing order: the input of
/// `replication::Topology::from_links`.
pub fn links(adjacency: &[u32; 32]) -> impl Iterator<Item = (u8, u8)> + '_ {
    (0u8..32).flat_map(move |a| {
        let above = u32::MAX.checked_shl(u32::from(a) + 1).unwrap_or(0);
        let higher = adjacency[usize::from(a)] & above;
        (0u8..32)
            .filter(move |&b| higher & (1 << b) != 0)
            .map(move |b| (a, b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjacency_table_lists_each_link_once() {
        let mut ring = [0u32; 32];
        ring[..4].copy_from_slice(&[0b1010, 0b0101, 0b1010, 0b0101]);
        let l: Vec<_> = links(&ring).collect();
        assert_eq!(l, [(0, 1), (0, 3), (1, 2), (2, 3)]);
        let mut top = [0u32; 32];
        top[31] = 1;
        top[0] = 1 << 31;
        assert_eq!(links(&top).collect::<Vec<_>>(), [(0, 31)]);
    }

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
