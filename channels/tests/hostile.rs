//! A hostile or corrupted peer: bad identity lines, bad sequence words, bad lengths, bad
//! acknowledgements. Every case ends in an error (sticky for the endpoint), never a panic.
#![cfg(not(loom))]

mod common;

use channels::layout::{
    CONTROL_A_OFFSET, CONTROL_B_OFFSET, CTL_ACK, HEADER_SIZE, ID_MAGIC, ID_SLOTS, ID_VERSION,
    SEQ_WORD,
};
use channels::{Channel, Corruption, LayoutError, RecvError, Region, SendError, Side};
use common::HostRegion;
use std::sync::atomic::Ordering;

fn set(r: &HostRegion, byte_offset: usize, index: usize, value: u64) {
    r.words()[byte_offset / 8 + index].store(value, Ordering::Relaxed);
}

#[test]
fn identity_line_is_validated() {
    let r = HostRegion::new(8);
    set(&r, 0, ID_MAGIC, 0x1234);
    assert_eq!(
        Channel::open(r.region()).unwrap_err(),
        LayoutError::BadMagic { found: 0x1234 }
    );

    let r = HostRegion::new(8);
    // A region formatted for layout v1 (before runs and piggybacked acknowledgements).
    set(&r, 0, ID_VERSION, 1);
    assert_eq!(
        Channel::open(r.region()).unwrap_err(),
        LayoutError::BadVersion { found: 1 }
    );

    for bad in [0, 1, 3, 8192, u64::MAX] {
        let r = HostRegion::new(8);
        set(&r, 0, ID_SLOTS, bad);
        assert_eq!(
            Channel::open(r.region()).unwrap_err(),
            LayoutError::BadSlots { found: bad }
        );
    }

    // A slot count the region is too small for.
    let r = HostRegion::new(8);
    set(&r, 0, ID_SLOTS, 1024);
    assert!(matches!(
        Channel::open(r.region()),
        Err(LayoutError::SizeMismatch { .. })
    ));

    let r = HostRegion::new(8);
    assert_eq!(
        Channel::open_expecting(r.region(), 16).unwrap_err(),
        LayoutError::UnexpectedSlots {
            expected: 16,
            found: 8
        }
    );
    assert!(Channel::open_expecting(r.region(), 8).is_ok());
}

#[test]
fn format_checks_its_arguments() {
    let r = HostRegion::new(8);
    assert_eq!(
        Channel::format(r.region(), 3).unwrap_err(),
        LayoutError::InvalidSlots { slots: 3 }
    );
    assert!(matches!(
        Channel::format(r.region(), 4096),
        Err(LayoutError::SizeMismatch { .. })
    ));
    let short = Region::from_words(&r.words()[..600]).unwrap();
    assert!(Channel::open(short).is_err());
}

#[test]
fn bad_sequence_word_stops_the_receiver() {
    let r = HostRegion::new(4);
    let ch = r.channel();
    let (_, mut rx) = ch.endpoint(Side::B);
    // Peer A writes garbage into the sequence word of slot 0 of ring A->B.
    set(&r, HEADER_SIZE, SEQ_WORD, 0xdead_beef);
    let err = RecvError::Corrupted(Corruption::BadSequence {
        pos: 0,
        word: 0xdead_beef,
    });
    assert_eq!(rx.try_recv(&mut [0; 56]), Err(err));
    // Sticky even if the peer "repairs" the slot.
    set(&r, HEADER_SIZE, SEQ_WORD, 0);
    assert_eq!(rx.try_recv(&mut [0; 56]), Err(err));
    assert!(
        rx.is_ready(),
        "a corrupted channel reports, it does not look empty"
    );
    assert!(!rx.prepare_wait(&mut || ()));
    assert!(rx.fault().is_some());
}

#[test]
fn bad_length_stops_the_receiver() {
    let r = HostRegion::new(4);
    let ch = r.channel();
    let (_, mut rx) = ch.endpoint(Side::B);
    // The expected sequence (message 0 has seq 1, at bit 24) with a length of 60.
    set(&r, HEADER_SIZE, SEQ_WORD, (1 << 24) | 60);
    assert_eq!(
        rx.try_recv(&mut [0; 56]),
        Err(RecvError::Corrupted(Corruption::BadLength {
            pos: 0,
            len: 60
        }))
    );
    assert!(rx.recv_slot().is_err());
    assert!(rx.recv_batch(4, |_| ()).is_err());
}

#[test]
fn bad_acknowledgement_stops_the_sender() {
    let r = HostRegion::new(4);
    let ch = r.channel();
    let (mut tx, _) = ch.endpoint(Side::A);
    for _ in 0..4 {
        tx.try_send(b"m").unwrap();
    }
    // Peer B acknowledges more than was sent.
    set(&r, CONTROL_B_OFFSET, CTL_ACK, 99);
    let err = SendError::Corrupted(Corruption::BadAck { sent: 4, ack: 99 });
    assert_eq!(tx.try_send(b"m"), Err(err));
    set(&r, CONTROL_B_OFFSET, CTL_ACK, 2);
    assert_eq!(tx.try_send(b"m"), Err(err), "sticky");
    assert!(!tx.prepare_wait());
}

#[test]
fn acknowledgement_going_backwards_is_corruption() {
    let r = HostRegion::new(4);
    let ch = r.channel();
    let (mut tx, _) = ch.endpoint(Side::A);
    let (_, mut rx) = ch.endpoint(Side::B);
    rx.set_ack_interval(1);
    for _ in 0..4 {
        tx.try_send(b"m").unwrap();
    }
    for _ in 0..3 {
        rx.try_recv(&mut [0; 56]).unwrap();
    }
    assert_eq!(tx.credits(), Ok(3));
    set(&r, CONTROL_B_OFFSET, CTL_ACK, 1);
    assert!(matches!(
        tx.credits(),
        Err(SendError::Corrupted(Corruption::BadAck { .. }))
    ));
}

#[test]
fn peer_scribbling_on_our_own_lines_does_not_affect_us() {
    let r = HostRegion::new(4);
    let ch = r.channel();
    let (mut atx, mut arx) = ch.endpoint(Side::A);
    let (mut btx, mut brx) = ch.endpoint(Side::B);
    // B overwrites A's control line and A's outgoing ring.
    for i in 0..8 {
        set(&r, CONTROL_A_OFFSET, i, u64::MAX);
        set(&r, HEADER_SIZE + 64, i, u64::MAX);
    }
    // A keeps sending and receiving normally (it never reads its own lines back).
    btx.try_send(b"to a").unwrap();
    assert_eq!(arx.try_recv(&mut [0; 56]), Ok(4));
    atx.try_send(b"to b").unwrap();
    // B, the scribbler, only hurts itself: its receive of slot 1 later sees garbage.
    assert_eq!(brx.try_recv(&mut [0; 56]), Ok(4));
    atx.try_send(b"again").unwrap();
    assert_eq!(brx.try_recv(&mut [0; 56]), Ok(5));
}

/// Writes message `pos` of ring B->A by hand, as a hostile B could: payload `fill`, length
/// `len`, and a piggybacked acknowledgement `ack`.
fn forge_b_message(r: &HostRegion, slots: usize, pos: u64, len: u64, ack: u64) {
    use channels::layout::{ring_b_to_a_offset, ACK_SHIFT, ACK_VALID_FLAG, SEQ_SHIFT};
    let ring_ba = ring_b_to_a_offset(slots as u32);
    let slot = ring_ba + (pos as usize % slots) * 64;
    let word = ((pos + 1) << SEQ_SHIFT) | (ack << ACK_SHIFT) | ACK_VALID_FLAG | len;
    set(r, slot, SEQ_WORD, word);
}

#[test]
fn forged_piggybacked_acknowledgements_are_bounded() {
    let r = HostRegion::new(8);
    let ch = r.channel();
    let mut a = ch.duplex(Side::A);
    let mut buf = [0; 56];
    assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
    for _ in 0..8 {
        a.try_send(b"m").unwrap();
    }
    assert_eq!(a.try_send(b"m"), Err(SendError::Full));
    // B claims to have consumed 9 of the 8 messages sent: ignored.
    forge_b_message(&r, 8, 0, 1, 9);
    assert_eq!(a.try_recv(&mut buf), Ok(1));
    assert_eq!(a.sender().acknowledged(), 0);
    assert_eq!(a.sender().credits(), Ok(0));
    // B claims 3: believed. A lie here only loses B's own incoming messages.
    forge_b_message(&r, 8, 1, 1, 3);
    assert_eq!(a.try_recv(&mut buf), Ok(1));
    assert_eq!(a.sender().credits(), Ok(3));
    // An older claim takes nothing back.
    forge_b_message(&r, 8, 2, 1, 1);
    assert_eq!(a.try_recv(&mut buf), Ok(1));
    assert_eq!(a.sender().credits(), Ok(3));
    // Messages received through the bare receiver are not taken in.
    forge_b_message(&r, 8, 3, 1, 8);
    assert_eq!(a.receiver().try_recv(&mut buf), Ok(1));
    assert_eq!(a.sender().credits(), Ok(3));
}

#[test]
fn an_old_message_cannot_claim_a_recent_count() {
    // B's reply waits unread in A's ring while A streams 70,000 messages to B: its 16-bit
    // acknowledgement (taken when B had consumed 10) must not be read as a count near A's
    // position 70,000 (10 + 65,536 = 65,546 would free slots B has not read).
    let r = HostRegion::new(8);
    let ch = r.channel();
    let mut a = ch.duplex(Side::A);
    let mut b = ch.duplex(Side::B);
    b.receiver().set_ack_interval(1);
    let mut buf = [0; 56];
    assert_eq!(a.try_recv(&mut buf), Err(RecvError::Empty));
    for _ in 0..10 {
        a.try_send(b"m").unwrap();
        b.try_recv(&mut buf).unwrap();
    }
    b.try_send(b"reply").unwrap();
    for _ in 0..65_536 - 6 {
        a.try_send(b"m").unwrap();
        b.try_recv(&mut buf).unwrap();
    }
    // Eight more that B has not read: 10 + 2^16 = 65,546 lies among them.
    for _ in 0..8 {
        a.try_send(b"m").unwrap();
    }
    assert_eq!(a.sender().position(), 65_548);
    let consumed = b.receiver().position();
    assert_eq!(a.try_recv(&mut buf), Ok(5));
    assert!(
        a.sender().acknowledged() <= consumed,
        "believed {} consumed, B consumed {consumed}",
        a.sender().acknowledged()
    );
    assert_eq!(a.try_send(b"m"), Err(SendError::Full));
}
