//! Opening a region as a channel: validating (or, for the formatter, writing) the identity
//! line, and carving out the two control lines and the two rings. Every reference into the
//! region is obtained here with checked slicing, once; the endpoints only ever index a ring
//! with a mask derived from its own length.
//!
//! Opening only reads the region (relaxed loads: valid on the read-only identity page), and
//! each endpoint half stores only into its own side's area (its control line, the ring it
//! sends on), so a guest following this crate never writes a page the nested page tables map
//! read-only for it (layout v4, `docs/channels.md`).

use crate::duplex::Duplex;
use crate::error::LayoutError;
use crate::layout::{
    control_offset, region_size, ring_offset, valid_slots, CTL_ACK, CTL_RX_WAIT, CTL_TX_WAIT,
    IDENTITY_OFFSET, ID_GENERATION, ID_MAGIC, ID_SLOTS, ID_VERSION, LAYOUT_VERSION, LINE_WORDS,
    MAGIC,
};
use crate::receiver::Receiver;
use crate::region::Region;
use crate::sender::Sender;
use crate::slot::Ring;
use crate::sync::{fence, load_acquire, Ordering, Word};

/// Which endpoint of a channel: A is the first partition named in the layout's `between`,
/// B the second. A sends on ring A->B and receives on ring B->A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first partition of the channel.
    A,
    /// The second partition of the channel.
    B,
}

impl Side {
    /// The other side.
    pub const fn peer(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// One endpoint's control line (written only by that endpoint).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Control<'a> {
    /// Messages this endpoint consumed from the ring towards it.
    pub(crate) ack: &'a Word,
    /// This endpoint's receiver wait word.
    pub(crate) rx_wait: &'a Word,
    /// This endpoint's sender wait word.
    pub(crate) tx_wait: &'a Word,
}

/// A validated channel region, from which each partition takes its endpoint.
///
/// Neither `Copy` nor `Clone`, and each side's endpoint is handed out at most once
/// ([`Channel::endpoint`], [`Channel::duplex`]), so safe code holding one opening cannot make
/// two writers of one side's control line and ring. [`Channel::reopen`] hands them out again
/// only after the hypervisor re-formatted the region (a new generation).
#[derive(Debug)]
pub struct Channel<'a> {
    /// The whole region, for [`Channel::reopen`].
    words: &'a [Word],
    /// Which sides' endpoints were handed out (`[A, B]`).
    taken: [bool; 2],
    slots: u32,
    /// The generation read at open.
    generation: u64,
    /// The identity line's generation word (read-only for guests).
    generation_word: &'a Word,
    rings: [Ring<'a>; 2],
    controls: [Control<'a>; 2],
}

fn word(words: &[Word], byte_offset: usize, index: usize) -> Option<&Word> {
    words.get(byte_offset / 8 + index)
}

impl<'a> Channel<'a> {
    /// Formats `region` as an empty channel of `slots` slots per direction: zeroes it, then
    /// writes the identity line. This is the hypervisor's job before the guests start (and a
    /// host test's); a guest must never call it on a live channel.
    pub fn format(region: Region<'a>, slots: u32) -> Result<Self, LayoutError> {
        Self::format_generation(region, slots, 0)
    }

    /// Like [`Channel::format`], writing `generation` into the identity line: the hypervisor
    /// formats a region with generation 0 before the guests start and re-formats it with the
    /// next generation when it restarts one endpoint's partition, so the live endpoint can
    /// tell ([`Channel::current_generation`]).
    pub fn format_generation(
        region: Region<'a>,
        slots: u32,
        generation: u64,
    ) -> Result<Self, LayoutError> {
        if !valid_slots(u64::from(slots)) {
            return Err(LayoutError::InvalidSlots {
                slots: u64::from(slots),
            });
        }
        let expected = region_size(slots);
        if region.len_bytes() != expected {
            return Err(LayoutError::SizeMismatch {
                expected,
                found: region.len_bytes(),
            });
        }
        let words = region.words();
        let id = |index| word(words, IDENTITY_OFFSET, index);
        // In order: the new generation first, so a live endpoint sees the change before any
        // of its ring words is wiped (the word never passes through 0 or goes back); then the
        // magic cleared, so an opening during the re-format fails (`BadMagic`) instead of
        // reading half-wiped rings; then everything but the generation zeroed; the magic
        // last, so an opening that sees it (Acquire) sees the whole new region.
        for (index, value) in [(ID_GENERATION, generation), (ID_MAGIC, 0)] {
            if let Some(w) = id(index) {
                w.store(value, Ordering::Release);
            }
        }
        // An endpoint that reads a wiped word, then (Acquire) the generation, sees the new one.
        fence(Ordering::Release);
        let keep = IDENTITY_OFFSET / 8 + ID_GENERATION;
        for (i, w) in words.iter().enumerate() {
            if i != keep {
                w.store(0, Ordering::Relaxed);
            }
        }
        for (index, value) in [(ID_SLOTS, u64::from(slots)), (ID_VERSION, LAYOUT_VERSION)] {
            if let Some(w) = id(index) {
                w.store(value, Ordering::Relaxed);
            }
        }
        if let Some(w) = id(ID_MAGIC) {
            w.store(MAGIC, Ordering::Release);
        }
        Self::open(region)
    }

    /// Opens a formatted region: validates the identity line (magic, version, slot count) and
    /// that the region is exactly `region_size(slots)` bytes.
    pub fn open(region: Region<'a>) -> Result<Self, LayoutError> {
        let words = region.words();
        let read = |index| {
            word(words, IDENTITY_OFFSET, index)
                .map(load_acquire)
                .ok_or(LayoutError::BadLength {
                    len: region.len_bytes(),
                })
        };
        let magic = read(ID_MAGIC)?;
        if magic != MAGIC {
            return Err(LayoutError::BadMagic { found: magic });
        }
        let version = read(ID_VERSION)?;
        if version != LAYOUT_VERSION {
            return Err(LayoutError::BadVersion { found: version });
        }
        let generation = read(ID_GENERATION)?;
        let slots = read(ID_SLOTS)?;
        if !valid_slots(slots) {
            return Err(LayoutError::BadSlots { found: slots });
        }
        let slots = u32::try_from(slots).map_err(|_| LayoutError::BadSlots { found: slots })?;
        let expected = region_size(slots);
        if region.len_bytes() != expected {
            return Err(LayoutError::SizeMismatch {
                expected,
                found: region.len_bytes(),
            });
        }
        let bad = LayoutError::BadLength {
            len: region.len_bytes(),
        };
        let ring = |offset: usize| {
            let start = offset / 8;
            let lines = words.get(start..start + slots as usize * LINE_WORDS)?;
            let (lines, _) = lines.as_chunks::<LINE_WORDS>();
            Ring::new(lines)
        };
        let control = |offset: usize| {
            Some(Control {
                ack: word(words, offset, CTL_ACK)?,
                rx_wait: word(words, offset, CTL_RX_WAIT)?,
                tx_wait: word(words, offset, CTL_TX_WAIT)?,
            })
        };
        Ok(Self {
            words,
            taken: [false; 2],
            slots,
            generation,
            generation_word: word(words, IDENTITY_OFFSET, ID_GENERATION).ok_or(bad)?,
            rings: [
                ring(ring_offset(Side::A, slots)).ok_or(bad)?,
                ring(ring_offset(Side::B, slots)).ok_or(bad)?,
            ],
            controls: [
                control(control_offset(Side::A, slots)).ok_or(bad)?,
                control(control_offset(Side::B, slots)).ok_or(bad)?,
            ],
        })
    }

    /// Like [`Channel::open`], and also checks the slot count against the one this guest was
    /// told (its boot information); disagreement is a corrupted channel.
    pub fn open_expecting(region: Region<'a>, slots: u32) -> Result<Self, LayoutError> {
        let channel = Self::open(region)?;
        if channel.slots != slots {
            return Err(LayoutError::UnexpectedSlots {
                expected: slots,
                found: channel.slots,
            });
        }
        Ok(channel)
    }

    /// Opens the region again after the hypervisor re-formatted it (its peer partition
    /// restarted): re-reads the identity line and hands out each side's endpoint once more,
    /// fresh at message 0. The endpoints of the previous opening describe a region that no
    /// longer exists and must be dropped. Returns the new generation.
    ///
    /// # Errors
    /// [`LayoutError::NotReformatted`] while the generation is still the one opened (the
    /// endpoints handed out stay the only ones); [`LayoutError::UnexpectedSlots`] if the new
    /// identity line has another slot count; any error of [`Channel::open`] (then this
    /// channel is unchanged).
    pub fn reopen(&mut self) -> Result<u64, LayoutError> {
        if self.current_generation() == self.generation {
            return Err(LayoutError::NotReformatted {
                generation: self.generation,
            });
        }
        let fresh = Self::open_expecting(Region::again(self.words), self.slots)?;
        *self = fresh;
        Ok(self.generation)
    }

    /// The region's raw words, as any mapping of it sees them: for a test that plays a
    /// hostile peer (or inspects the layout) while this channel's endpoints are alive. Shared
    /// words cannot be wrapped as another [`Region`] in safe code ([`Region::from_words`]
    /// takes them by `&mut`), so this hands out no second writer of a side.
    pub fn words(&self) -> &'a [Word] {
        self.words
    }

    /// Slots per direction.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// The region's generation when it was opened (0 until a re-format).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The generation in the identity line now: different from [`Channel::generation`] once
    /// the hypervisor re-formatted the region (zeroed it: every message and count of this
    /// opening is gone). Endpoints of this opening must then no longer be used; open the
    /// region again for fresh ones. One relaxed load and an acquire fence, no VM exit.
    pub fn current_generation(&self) -> u64 {
        load_acquire(self.generation_word)
    }

    /// The sending and receiving halves of endpoint `side`, both starting at message 0, to
    /// use separately (on different threads, say). Messages sent this way carry no
    /// acknowledgement, so the peer's runs never end early: use [`Channel::duplex`] when
    /// one thread owns both halves.
    ///
    /// Each side is handed out once per opening (by this or [`Channel::duplex`]): `None`
    /// once it was. Take a side's endpoint in the partition that owns it: the halves write
    /// that side's control line and ring, and each line must have one writer. (Under Flotilla
    /// the other side's area is mapped read-only: taking the peer's endpoint and sending on
    /// it is a nested page fault that stops the partition.)
    pub fn endpoint(&mut self, side: Side) -> Option<(Sender<'a>, Receiver<'a>)> {
        let taken = &mut self.taken[match side {
            Side::A => 0,
            Side::B => 1,
        }];
        if *taken {
            return None;
        }
        *taken = true;
        let [ring_ab, ring_ba] = self.rings;
        let [ctl_a, ctl_b] = self.controls;
        let (out, inc, mine, peer) = match side {
            Side::A => (ring_ab, ring_ba, ctl_a, ctl_b),
            Side::B => (ring_ba, ring_ab, ctl_b, ctl_a),
        };
        Some((
            Sender::new(out, peer, mine.tx_wait),
            Receiver::new(inc, mine, peer.tx_wait),
        ))
    }

    /// Endpoint `side` as one object owning both halves: every message it sends carries how
    /// many messages it has received, and what the peer's messages carry refreshes its
    /// credits, so request/response traffic ends runs early and stays on a few hot lines
    /// (see `docs/channels.md`, "Runs"). Handed out once, like [`Channel::endpoint`].
    pub fn duplex(&mut self, side: Side) -> Option<Duplex<'a>> {
        let (tx, rx) = self.endpoint(side)?;
        Some(Duplex::new(tx, rx))
    }
}
