//! Who is in the group, who is linked to whom, and the spanning tree messages travel on.
//!
//! Members are numbered `0..n` (`n <= 32`) in the group's order; a [`MemberSet`] is a bitset
//! of them. A [`Topology`] holds the group's links (one per channel between two members).
//! [`Topology::tree`] computes the spanning tree over the live members by breadth-first
//! search from the root, visiting neighbours in increasing member id: every member computes
//! the same tree from the same inputs, and on a hypercube numbered the usual way (links
//! between ids differing in one bit) the tree from member 0 is the binomial tree of depth
//! log2 n. Live members the search cannot reach (the survivors are disconnected) are not in
//! the tree: they are *isolated* until a later epoch reconnects them.

/// A member's number in its group, `0..n`.
pub type MemberId = u8;

/// Largest group: member sets are `u32` bitsets, and a partition has at most 32 channels.
pub const MAX_MEMBERS: usize = 32;

const NONE: u8 = u8::MAX;

/// A set of members, bit `i` for member `i`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord)]
pub struct MemberSet(pub u32);

impl MemberSet {
    /// No member.
    pub const EMPTY: Self = Self(0);

    /// Members `0..n`.
    pub const fn first(n: usize) -> Self {
        if n >= 32 {
            Self(u32::MAX)
        } else {
            Self((1u32 << n) - 1)
        }
    }

    /// Whether `m` is in the set (false for ids out of range).
    pub const fn contains(self, m: MemberId) -> bool {
        (m as usize) < MAX_MEMBERS && self.0 & (1 << m) != 0
    }

    /// The set with `m` added (unchanged for ids out of range).
    #[must_use]
    pub const fn with(self, m: MemberId) -> Self {
        if (m as usize) < MAX_MEMBERS {
            Self(self.0 | (1 << m))
        } else {
            self
        }
    }

    /// The set with `m` removed.
    #[must_use]
    pub const fn without(self, m: MemberId) -> Self {
        if (m as usize) < MAX_MEMBERS {
            Self(self.0 & !(1 << m))
        } else {
            self
        }
    }

    /// Members in both sets.
    #[must_use]
    pub const fn and(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Members in `self` and not in `other`.
    #[must_use]
    pub const fn minus(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether every member of `other` is in `self`.
    pub const fn contains_all(self, other: Self) -> bool {
        other.0 & !self.0 == 0
    }

    /// Number of members.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The lowest member.
    pub const fn min(self) -> Option<MemberId> {
        if self.0 == 0 {
            None
        } else {
            // Not lossy: the lowest set bit of a `u32` is below 32 (and
            // `MemberId::try_from` is not `const`).
            #[allow(clippy::cast_possible_truncation)]
            let m = self.0.trailing_zeros() as MemberId;
            Some(m)
        }
    }

    /// Members in increasing order.
    pub fn iter(self) -> impl Iterator<Item = MemberId> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let m = MemberId::try_from(bits.trailing_zeros()).ok()?;
            bits &= bits - 1;
            Some(m)
        })
    }
}

/// Why a topology cannot be built.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TopologyError {
    /// A group has 1..=32 members.
    BadSize(usize),
    /// A link names a member outside the group, or links a member to itself.
    BadLink(usize, usize),
}

/// The group's links: which members share a channel.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Topology {
    n: u8,
    adj: [u32; MAX_MEMBERS],
}

impl Topology {
    /// A group of `n` members with no links yet.
    pub fn new(n: usize) -> Result<Self, TopologyError> {
        let size = u8::try_from(n)
            .ok()
            .filter(|&s| s != 0 && usize::from(s) <= MAX_MEMBERS)
            .ok_or(TopologyError::BadSize(n))?;
        Ok(Self {
            n: size,
            adj: [0; MAX_MEMBERS],
        })
    }

    /// A group of `n` members with the given links (pairs of member ids, in any order).
    pub fn from_links(n: usize, links: &[(usize, usize)]) -> Result<Self, TopologyError> {
        let mut t = Self::new(n)?;
        for &(a, b) in links {
            t.link(a, b)?;
        }
        Ok(t)
    }

    /// Adds the link `a`–`b` (idempotent).
    pub fn link(&mut self, a: usize, b: usize) -> Result<(), TopologyError> {
        let n = self.n as usize;
        if a >= n || b >= n || a == b {
            return Err(TopologyError::BadLink(a, b));
        }
        self.adj[a] |= 1 << b;
        self.adj[b] |= 1 << a;
        Ok(())
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.n as usize
    }

    /// Every member of the group.
    pub fn members(&self) -> MemberSet {
        MemberSet::first(self.size())
    }

    /// The members linked to `m` (empty for ids out of range).
    pub fn neighbours(&self, m: MemberId) -> MemberSet {
        match self.adj.get(m as usize) {
            Some(&bits) if m < self.n => MemberSet(bits),
            _ => MemberSet::EMPTY,
        }
    }

    /// Number of links.
    pub fn links(&self) -> usize {
        self.adj
            .iter()
            .map(|a| a.count_ones() as usize)
            .sum::<usize>()
            / 2
    }

    /// The hypercube of dimension `dim` (`2^dim` members, links between ids that differ in
    /// one bit).
    pub fn hypercube(dim: u32) -> Result<Self, TopologyError> {
        let n = 1usize.checked_shl(dim).unwrap_or(usize::MAX);
        let mut t = Self::new(n)?;
        for a in 0..n {
            for bit in 0..dim {
                t.link(a, a ^ (1 << bit))?;
            }
        }
        Ok(t)
    }

    /// The line `0 - 1 - ... - (n-1)`.
    pub fn line(n: usize) -> Result<Self, TopologyError> {
        let mut t = Self::new(n)?;
        for a in 1..n {
            t.link(a - 1, a)?;
        }
        Ok(t)
    }

    /// The ring `0 - 1 - ... - (n-1) - 0`.
    pub fn ring(n: usize) -> Result<Self, TopologyError> {
        let mut t = Self::line(n)?;
        if n > 2 {
            t.link(n - 1, 0)?;
        }
        Ok(t)
    }

    /// The star with every other member linked to `centre`.
    pub fn star(n: usize, centre: usize) -> Result<Self, TopologyError> {
        let mut t = Self::new(n)?;
        for a in (0..n).filter(|&a| a != centre) {
            t.link(centre, a)?;
        }
        Ok(t)
    }

    /// Every member linked to every other.
    pub fn complete(n: usize) -> Result<Self, TopologyError> {
        let mut t = Self::new(n)?;
        for a in 0..n {
            for b in a + 1..n {
                t.link(a, b)?;
            }
        }
        Ok(t)
    }

    /// The spanning tree over `alive` (restricted to this group) by breadth-first search from
    /// `root`, neighbours visited in increasing id. If `root` is not alive the tree is empty.
    pub fn tree(&self, alive: MemberSet, root: MemberId) -> Tree {
        let alive = alive.and(self.members());
        let mut tree = Tree {
            root,
            parent: [NONE; MAX_MEMBERS],
            children: [0; MAX_MEMBERS],
            depth: [0; MAX_MEMBERS],
            reached: MemberSet::EMPTY,
        };
        if !alive.contains(root) {
            return tree;
        }
        let mut queue = [0u8; MAX_MEMBERS];
        let (mut head, mut tail) = (0, 1);
        queue[0] = root;
        tree.reached = MemberSet::EMPTY.with(root);
        while head < tail {
            let u = queue[head];
            head += 1;
            for v in self.neighbours(u).and(alive).minus(tree.reached).iter() {
                tree.reached = tree.reached.with(v);
                tree.parent[v as usize] = u;
                tree.children[u as usize] |= 1 << v;
                tree.depth[v as usize] = tree.depth[u as usize] + 1;
                queue[tail] = v;
                tail += 1;
            }
        }
        tree
    }
}

/// A spanning tree over the live members reachable from its root.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Tree {
    root: MemberId,
    parent: [u8; MAX_MEMBERS],
    children: [u32; MAX_MEMBERS],
    depth: [u8; MAX_MEMBERS],
    reached: MemberSet,
}

impl Tree {
    /// The root (the leader).
    pub fn root(&self) -> MemberId {
        self.root
    }

    /// The members in the tree.
    pub fn reached(&self) -> MemberSet {
        self.reached
    }

    /// `m`'s parent (`None` for the root and for members not in the tree).
    pub fn parent(&self, m: MemberId) -> Option<MemberId> {
        match self.parent.get(m as usize) {
            Some(&p) if p != NONE => Some(p),
            _ => None,
        }
    }

    /// `m`'s children.
    pub fn children(&self, m: MemberId) -> MemberSet {
        MemberSet(self.children.get(m as usize).copied().unwrap_or(0))
    }

    /// `m`'s tree neighbours: its parent and its children.
    pub fn neighbours(&self, m: MemberId) -> MemberSet {
        let c = self.children(m);
        match self.parent(m) {
            Some(p) => c.with(p),
            None => c,
        }
    }

    /// `m`'s distance from the root (0 for the root and for members not in the tree).
    pub fn depth(&self, m: MemberId) -> u32 {
        u32::from(self.depth.get(m as usize).copied().unwrap_or(0))
    }

    /// The largest depth: rounds for a broadcast from the root to reach every member.
    pub fn height(&self) -> u32 {
        self.reached
            .iter()
            .map(|m| self.depth(m))
            .max()
            .unwrap_or(0)
    }

    /// The largest distance in the tree from `m` to another member: rounds for a broadcast
    /// started at `m` (a shootdown) to reach every member.
    pub fn eccentricity(&self, m: MemberId) -> u32 {
        if !self.reached.contains(m) {
            return 0;
        }
        let mut dist = [u32::MAX; MAX_MEMBERS];
        let mut queue = [0u8; MAX_MEMBERS];
        let (mut head, mut tail) = (0, 1);
        queue[0] = m;
        dist[m as usize] = 0;
        let mut far = 0;
        while head < tail {
            let u = queue[head];
            head += 1;
            for v in self.neighbours(u).iter() {
                if dist[v as usize] == u32::MAX {
                    dist[v as usize] = dist[u as usize] + 1;
                    far = far.max(dist[v as usize]);
                    queue[tail] = v;
                    tail += 1;
                }
            }
        }
        far
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_sets() {
        let s = MemberSet::EMPTY.with(3).with(0).with(31).with(40);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 3, 31]);
        assert_eq!(s.min(), Some(0));
        assert_eq!(s.without(0).min(), Some(3));
        assert_eq!(s.len(), 3);
        assert!(!s.contains(40));
        assert_eq!(MemberSet::first(32).len(), 32);
        assert!(MemberSet::first(4).contains_all(s.without(31)));
        assert!(!MemberSet::first(4).contains_all(s));
    }

    #[test]
    fn bad_topologies_are_refused() {
        assert_eq!(Topology::new(0), Err(TopologyError::BadSize(0)));
        assert_eq!(Topology::new(33), Err(TopologyError::BadSize(33)));
        assert_eq!(
            Topology::from_links(2, &[(0, 2)]),
            Err(TopologyError::BadLink(0, 2))
        );
        assert_eq!(
            Topology::from_links(2, &[(1, 1)]),
            Err(TopologyError::BadLink(1, 1))
        );
    }

    #[test]
    fn hypercube_tree_is_binomial() {
        for dim in 0..=5 {
            let t = Topology::hypercube(dim).unwrap();
            let n = 1usize << dim;
            assert_eq!(t.links(), n * dim as usize / 2);
            let tree = t.tree(t.members(), 0);
            assert_eq!(tree.reached(), t.members());
            assert_eq!(tree.height(), dim);
            for m in 1..u8::try_from(n).unwrap() {
                // BFS with ties by id discovers m first from m with its highest bit
                // cleared: the binomial tree.
                let high = 1u8 << (7 - m.leading_zeros());
                assert_eq!(tree.parent(m), Some(m ^ high), "member {m}");
                assert_eq!(tree.depth(m), m.count_ones());
            }
        }
    }

    #[test]
    fn other_shapes() {
        let line = Topology::line(8).unwrap();
        assert_eq!(line.tree(line.members(), 0).height(), 7);
        let ring = Topology::ring(8).unwrap();
        let tree = ring.tree(ring.members(), 0);
        assert_eq!(tree.height(), 4);
        assert_eq!(tree.children(0).iter().collect::<Vec<_>>(), [1, 7]);
        assert_eq!(tree.parent(4), Some(3), "ties go to the lower id");
        let star = Topology::star(8, 0).unwrap();
        assert_eq!(star.tree(star.members(), 0).height(), 1);
        let star7 = Topology::star(8, 7).unwrap();
        let tree = star7.tree(star7.members(), 0);
        assert_eq!(tree.height(), 2);
        assert_eq!(tree.eccentricity(7), 1);
        assert_eq!(tree.eccentricity(0), 2);
    }

    #[test]
    fn tree_over_survivors_and_disconnection() {
        let cube = Topology::hypercube(3).unwrap();
        // After any single death the survivors' tree (from the lowest survivor) has depth <= 3.
        for dead in 0..8u8 {
            let alive = cube.members().without(dead);
            let root = alive.min().unwrap();
            let tree = cube.tree(alive, root);
            assert_eq!(tree.reached(), alive);
            assert!(tree.height() <= 3, "dead {dead}: {}", tree.height());
            assert!(!tree.reached().contains(dead));
        }
        // A line cut in the middle: the part without the root is not in the tree.
        let line = Topology::line(5).unwrap();
        let tree = line.tree(line.members().without(2), 0);
        assert_eq!(tree.reached(), MemberSet(0b11));
        assert_eq!(tree.parent(3), None);
        // A dead root gives an empty tree.
        assert!(line.tree(line.members().without(0), 0).reached().is_empty());
    }

    #[test]
    fn every_member_computes_the_same_tree_whatever_the_link_order() {
        let a = Topology::from_links(4, &[(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]).unwrap();
        let b = Topology::from_links(4, &[(2, 0), (0, 3), (3, 2), (2, 1), (1, 0)]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.tree(a.members(), 1), b.tree(b.members(), 1));
    }
}
