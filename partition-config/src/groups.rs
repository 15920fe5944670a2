//! Replication groups seen from the layout: the members' channel graph as the
//! `replication` crate's [`Topology`], the spanning tree every member computes
//! from it, and the members whose death would disconnect the others.
//!
//! The inputs are exactly the members': member `i` is the group's `i`-th
//! partition in partition-index order, and the links are the layout's
//! channels between two members ([`Group::links`]). So the tree `explain`
//! prints is the tree the guests build (`replication::topology`).

use replication::{MemberId, MemberSet, Topology, Tree};

use crate::layout::{Channel, Group, GroupLink};

/// Every channel between two of `members` (partition indices, increasing),
/// in channel order, as links between member ids.
pub(crate) fn links_among(members: &[usize], channels: &[Channel]) -> Vec<GroupLink> {
    let id = |p: usize| members.iter().position(|&m| m == p);
    channels
        .iter()
        .enumerate()
        .filter_map(|(channel, c)| {
            let (a, b) = (id(c.a)?, id(c.b)?);
            Some(GroupLink {
                channel,
                a: u8::try_from(a.min(b)).ok()?,
                b: u8::try_from(a.max(b)).ok()?,
            })
        })
        .collect()
}

/// The topology of `n` members with `links`, or `None` when `n` is not a
/// group size the protocol supports (validation reports that first).
pub(crate) fn topology(n: usize, links: &[GroupLink]) -> Option<Topology> {
    let pairs: Vec<(usize, usize)> = links
        .iter()
        .map(|l| (usize::from(l.a), usize::from(l.b)))
        .collect();
    Topology::from_links(n, &pairs).ok()
}

/// The connected components of `alive` in `t`, each as its member ids in
/// increasing order, ordered by their lowest member.
pub(crate) fn components(t: &Topology, alive: MemberSet) -> Vec<MemberSet> {
    let mut left = alive;
    let mut out = Vec::new();
    while let Some(root) = left.min() {
        let part = t.tree(left, root).reached();
        out.push(part);
        left = left.minus(part);
    }
    out
}

/// The members whose death leaves the other members disconnected (cut
/// vertices of the members' channel graph), with the components the
/// survivors would fall into. Only meaningful on a connected topology.
pub(crate) fn cut_vertices(t: &Topology) -> Vec<(MemberId, Vec<MemberSet>)> {
    t.members()
        .iter()
        .filter_map(|m| {
            let parts = components(t, t.members().without(m));
            (parts.len() > 1).then_some((m, parts))
        })
        .collect()
}

impl Group {
    /// The group's topology, as its members build it.
    #[must_use]
    pub fn topology(&self) -> Option<Topology> {
        topology(self.members.len(), &self.links)
    }

    /// The spanning tree of the whole group from its leader (member 0, the
    /// lowest live member when every member is alive).
    #[must_use]
    pub fn tree(&self) -> Option<Tree> {
        let t = self.topology()?;
        Some(t.tree(t.members(), 0))
    }

    /// The members (ids in the group) whose death would disconnect the rest.
    #[must_use]
    pub fn cut_vertices(&self) -> Vec<MemberId> {
        self.topology()
            .map(|t| cut_vertices(&t).into_iter().map(|(m, _)| m).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(n: usize, pairs: &[(u8, u8)]) -> Group {
        Group {
            name: "g".into(),
            members: (0..n).collect(),
            links: pairs
                .iter()
                .enumerate()
                .map(|(channel, &(a, b))| GroupLink { channel, a, b })
                .collect(),
        }
    }

    #[test]
    fn limits_agree_with_the_protocol() {
        assert_eq!(crate::limits::MAX_GROUP_MEMBERS, replication::MAX_MEMBERS);
    }

    #[test]
    fn links_are_the_channels_among_members() {
        let ch = |a, b| Channel {
            a,
            b,
            slots: 64,
            notify: crate::layout::Notify::Poll,
            region: crate::layout::Region { base: 0, size: 0 },
            vector: 0x40,
        };
        // Members are partitions 1, 3, 4; channel 1 (0-1) leaves the group.
        let channels = [ch(4, 1), ch(0, 1), ch(3, 1), ch(4, 3)];
        let links = links_among(&[1, 3, 4], &channels);
        assert_eq!(
            links,
            [
                GroupLink {
                    channel: 0,
                    a: 0,
                    b: 2
                },
                GroupLink {
                    channel: 2,
                    a: 0,
                    b: 1
                },
                GroupLink {
                    channel: 3,
                    a: 1,
                    b: 2
                },
            ]
        );
    }

    #[test]
    fn ring_has_no_cut_vertex_line_has_inner_ones() {
        let ring = group(4, &[(0, 1), (1, 2), (2, 3), (0, 3)]);
        assert!(ring.cut_vertices().is_empty());
        let tree = ring.tree().expect("tree");
        assert_eq!(tree.height(), 2);
        assert_eq!(tree.children(0).iter().collect::<Vec<_>>(), [1, 3]);
        let line = group(4, &[(0, 1), (1, 2), (2, 3)]);
        assert_eq!(line.cut_vertices(), [1, 2]);
        let t = line.topology().expect("topology");
        let cuts = cut_vertices(&t);
        assert_eq!(cuts[0].1, [MemberSet(0b0001), MemberSet(0b1100)]);
        // Two members: either death leaves one member, never disconnected.
        assert!(group(2, &[(0, 1)]).cut_vertices().is_empty());
    }

    #[test]
    fn components_of_a_split_group() {
        let t = topology(5, &group(5, &[(0, 1), (2, 3), (3, 4)]).links).expect("topology");
        assert_eq!(
            components(&t, t.members()),
            [MemberSet(0b00011), MemberSet(0b11100)]
        );
    }
}
