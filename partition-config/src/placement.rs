//! Host-physical placement of partitions and channels (policy:
//! `docs/layout.md`, "Memory map").
//!
//! Usable memory is `[HYPERVISOR_RESERVE, memory - FIRMWARE_RESERVE)`.
//! Partitions with an explicit `base` sit there; the others are placed in
//! declaration order from the bottom, each 2 MiB aligned, at the lowest
//! address past the previous one that does not overlap an explicit one.
//! Channel regions follow the last placed partition the same way, 4 KiB
//! aligned. The result depends only on the layout, never on the host.

use crate::layout::Region;
use crate::limits::{align_up, FIRMWARE_RESERVE, HYPERVISOR_RESERVE, PAGE_SIZE, PARTITION_ALIGN};

/// What one partition asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub size: u64,
    pub base: Option<u64>,
}

/// Why placement failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlaceError {
    /// Partition `0`'s explicit base is inside the hypervisor's reserve.
    BelowReserve(usize),
    /// Partitions `0` and `1` (explicit bases) overlap.
    Overlap(usize, usize),
    /// Partition `0` ends past the usable memory.
    PartitionPastEnd(usize, u64),
    /// Channel `0` ends past the usable memory.
    ChannelPastEnd(usize, u64),
}

/// The placed regions of partitions and channels.
pub(crate) type Placement = (Vec<Region>, Vec<Region>);

/// The lowest address `>= from`, aligned to `align`, where `size` bytes
/// overlap none of `taken`.
fn first_fit(from: u64, size: u64, align: u64, taken: &[Region]) -> Option<u64> {
    let mut addr = align_up(from, align)?;
    loop {
        let want = Region { base: addr, size };
        match taken.iter().find(|r| r.overlaps(&want)) {
            Some(r) => addr = align_up(r.end(), align)?,
            None => return Some(addr),
        }
    }
}

/// Places everything in `memory` bytes of RAM.
pub(crate) fn place(
    memory: u64,
    partitions: &[Request],
    channels: &[u64],
) -> Result<Placement, Vec<PlaceError>> {
    let usable_end = memory.saturating_sub(FIRMWARE_RESERVE);
    let mut errors = Vec::new();
    let mut explicit: Vec<Region> = Vec::new();
    let mut regions: Vec<Option<Region>> = vec![None; partitions.len()];

    for (i, req) in partitions.iter().enumerate() {
        let Some(base) = req.base else { continue };
        let region = Region {
            base,
            size: req.size,
        };
        if base < HYPERVISOR_RESERVE {
            errors.push(PlaceError::BelowReserve(i));
        } else if region.end() > usable_end || base.checked_add(req.size).is_none() {
            errors.push(PlaceError::PartitionPastEnd(i, region.end()));
        }
        for (j, other) in regions.iter().enumerate().take(i) {
            if other.is_some_and(|o| o.overlaps(&region)) {
                errors.push(PlaceError::Overlap(j, i));
            }
        }
        regions[i] = Some(region);
        explicit.push(region);
    }

    let mut cursor = HYPERVISOR_RESERVE;
    for (i, req) in partitions.iter().enumerate() {
        if req.base.is_some() {
            continue;
        }
        let base = first_fit(cursor, req.size, PARTITION_ALIGN, &explicit).unwrap_or(u64::MAX);
        let region = Region {
            base,
            size: req.size,
        };
        if region.end() > usable_end || base.checked_add(req.size).is_none() {
            errors.push(PlaceError::PartitionPastEnd(i, region.end()));
        }
        cursor = region.end();
        regions[i] = Some(region);
    }

    let mut channel_regions = Vec::with_capacity(channels.len());
    for (i, &size) in channels.iter().enumerate() {
        let base = first_fit(cursor, size, PAGE_SIZE, &explicit).unwrap_or(u64::MAX);
        let region = Region { base, size };
        if region.end() > usable_end || base.checked_add(size).is_none() {
            errors.push(PlaceError::ChannelPastEnd(i, region.end()));
        }
        cursor = region.end();
        channel_regions.push(region);
    }

    if errors.is_empty() {
        Ok((regions.into_iter().flatten().collect(), channel_regions))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{channel_region_size, MIB};

    fn auto(size: u64) -> Request {
        Request { size, base: None }
    }

    #[test]
    fn declaration_order_from_64_mib() {
        let (p, c) = place(
            512 * MIB,
            &[auto(32 * MIB), auto(16 * MIB)],
            &[channel_region_size(64)],
        )
        .expect("fits");
        assert_eq!(
            p[0],
            Region {
                base: 64 * MIB,
                size: 32 * MIB
            }
        );
        assert_eq!(
            p[1],
            Region {
                base: 96 * MIB,
                size: 16 * MIB
            }
        );
        assert_eq!(
            c[0],
            Region {
                base: 112 * MIB,
                size: 20 * 1024
            }
        );
    }

    #[test]
    fn automatic_partitions_skip_explicit_ones() {
        let reqs = [
            auto(32 * MIB),
            Request {
                size: 16 * MIB,
                base: Some(96 * MIB),
            },
            auto(32 * MIB),
            auto(8 * MIB),
        ];
        let (p, c) = place(512 * MIB, &reqs, &[channel_region_size(2)]).expect("fits");
        assert_eq!(p[0].base, 64 * MIB);
        assert_eq!(p[1].base, 96 * MIB);
        assert_eq!(p[2].base, 112 * MIB);
        assert_eq!(p[3].base, 144 * MIB);
        assert_eq!(c[0].base, 152 * MIB);
    }

    #[test]
    fn channels_skip_explicit_partitions() {
        let reqs = [
            auto(2 * MIB),
            Request {
                size: 2 * MIB,
                base: Some(66 * MIB),
            },
        ];
        let (_, c) = place(512 * MIB, &reqs, &[channel_region_size(64)]).expect("fits");
        assert_eq!(c[0].base, 68 * MIB);
    }

    #[test]
    fn errors() {
        let reqs = [
            Request {
                size: 2 * MIB,
                base: Some(0),
            },
            Request {
                size: 4 * MIB,
                base: Some(100 * MIB),
            },
            Request {
                size: 4 * MIB,
                base: Some(102 * MIB),
            },
            auto(1024 * MIB),
        ];
        let errs = place(512 * MIB, &reqs, &[]).expect_err("does not fit");
        assert!(errs.contains(&PlaceError::BelowReserve(0)));
        assert!(errs.contains(&PlaceError::Overlap(1, 2)));
        assert!(errs
            .iter()
            .any(|e| matches!(e, PlaceError::PartitionPastEnd(3, _))));
    }

    #[test]
    fn exact_fit() {
        // 512 MiB - 64 MiB - 16 MiB = 432 MiB usable.
        assert!(place(512 * MIB, &[auto(432 * MIB)], &[]).is_ok());
        assert!(place(512 * MIB, &[auto(434 * MIB)], &[]).is_err());
    }
}
