//! Which channel record a take by peer name means, and why a take fails
//! (pure, host-tested; the taking itself is `Context::take_channel`).

use abi::boot::{name_str, ChannelInfo};
use channels::LayoutError;

/// Why a channel could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The partition has no (such) channel to that peer.
    NoSuchPeer,
    /// Every channel to that peer was taken already.
    AlreadyTaken,
    /// The channel record does not describe a usable region.
    BadRecord,
    /// The region is not a channel of this layout version (or misaligned).
    Layout(LayoutError),
}

/// The first record in `infos` (layout order) whose peer is `peer` and
/// that `taken` does not say is taken.
pub fn pick(
    infos: &[ChannelInfo],
    taken: impl Fn(usize) -> bool,
    peer: &str,
) -> Result<usize, ChannelError> {
    let mut seen = false;
    for (index, info) in infos.iter().enumerate() {
        if name_str(&info.peer_name) != peer {
            continue;
        }
        if !taken(index) {
            return Ok(index);
        }
        seen = true;
    }
    Err(if seen {
        ChannelError::AlreadyTaken
    } else {
        ChannelError::NoSuchPeer
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    fn to(peer: &str) -> ChannelInfo {
        let mut info = ChannelInfo::new_zeroed();
        info.peer_name[..peer.len()].copy_from_slice(peer.as_bytes());
        info
    }

    #[test]
    fn first_untaken_channel_to_the_peer() {
        let infos = [to("left"), to("right"), to("left")];
        assert_eq!(pick(&infos, |_| false, "left"), Ok(0));
        assert_eq!(pick(&infos, |i| i == 0, "left"), Ok(2));
        assert_eq!(pick(&infos, |_| false, "right"), Ok(1));
        assert_eq!(
            pick(&infos, |i| i != 1, "left"),
            Err(ChannelError::AlreadyTaken)
        );
        assert_eq!(
            pick(&infos, |_| false, "nobody"),
            Err(ChannelError::NoSuchPeer)
        );
        assert_eq!(pick(&[], |_| false, "left"), Err(ChannelError::NoSuchPeer));
    }
}
