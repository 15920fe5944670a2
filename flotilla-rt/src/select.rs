//! Waiting on several channels at once: [`wait_any`] returns the index of
//! a link with a message ready, sleeping until one arrives when every link
//! is an `ipi` channel, polling them in turn when any is a `poll` one (a
//! `poll` peer never raises an interrupt, so sleeping could miss it).
//!
//! A sleep is entered only after the wait was announced on every link (the
//! `channels` crate's wait handshake, each with its re-check), with
//! interrupts masked from the first announcement to the `sti; hlt`, so a
//! message that arrives on any of them after its check raises an IPI that
//! wakes the sleep. Host-testable over [`Platform`]; `flotilla_rt::wait_any`
//! is the same over `Endpoint`s.

use crate::link::{Link, Platform};

/// Something that holds one link: a [`Link`] itself, or an `Endpoint`.
pub trait AsLink<'a> {
    /// The link.
    fn as_link(&mut self) -> &mut Link<'a>;
}

impl<'a> AsLink<'a> for Link<'a> {
    fn as_link(&mut self) -> &mut Link<'a> {
        self
    }
}

/// The first of `links` (in slice order) whose next receive will not find
/// its ring empty: a message is there, or the channel is corrupted and the
/// receive will say so. Waits for one; `None` only for an empty slice.
///
/// Scanning starts at index 0 each call: a caller that must not let one
/// busy peer starve the others rotates the slice, or serves every ready
/// link (see [`ready`]) before waiting again.
pub fn wait_any<'a, L: AsLink<'a> + ?Sized>(
    links: &mut [&mut L],
    p: &mut impl Platform,
) -> Option<usize> {
    wait_any_until(links, None, p)
}

/// [`wait_any`] with a deadline in [`Platform::now`]'s cycles: `None` also
/// once `now()` reaches `deadline` with no link ready. A sleeping wait
/// looks at the clock when an interrupt wakes it (a timer tick at the
/// latest), so it ends up to one tick after the deadline.
pub fn wait_any_until<'a, L: AsLink<'a> + ?Sized>(
    links: &mut [&mut L],
    deadline: Option<u64>,
    p: &mut impl Platform,
) -> Option<usize> {
    if links.is_empty() {
        return None;
    }
    let all_ipi = links.iter_mut().all(|l| l.as_link().ipi);
    loop {
        if let Some(i) = first_ready(links) {
            return Some(i);
        }
        if deadline.is_some_and(|d| p.now() >= d) {
            return None;
        }
        if !all_ipi {
            for l in links.iter_mut() {
                // Freed slots reach a polling sender this way.
                l.as_link().io.receiver().publish_ack();
            }
            p.relax();
            continue;
        }
        p.begin_wait();
        let mut announced = 0;
        let mut found = None;
        for (i, l) in links.iter_mut().enumerate() {
            let link = l.as_link();
            let id = link.channel_id;
            if link.io.receiver().prepare_wait(&mut || p.notify(id)) {
                announced = i + 1;
            } else {
                found = Some(i);
                break;
            }
        }
        p.end_wait(found.is_none());
        for l in links.iter_mut().take(announced) {
            l.as_link().io.receiver().finish_wait();
        }
        if let Some(i) = found {
            return Some(i);
        }
    }
}

/// The indices of `links` with a message ready now, without waiting, as a
/// bit set (bit `i` for link `i`; links past 63 are not looked at).
pub fn ready<'a, L: AsLink<'a> + ?Sized>(links: &mut [&mut L]) -> u64 {
    let mut set = 0;
    for (i, l) in links.iter_mut().take(64).enumerate() {
        if l.as_link().io.receiver().is_ready() {
            set |= 1 << i;
        }
    }
    set
}

fn first_ready<'a, L: AsLink<'a> + ?Sized>(links: &mut [&mut L]) -> Option<usize> {
    links
        .iter_mut()
        .position(|l| l.as_link().io.receiver().is_ready())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::tests::Ticking;
    use channels::{Channel, Region, Side};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts the sleeps it was asked for; yields instead of sleeping.
    #[derive(Default)]
    struct Host {
        sleeps: usize,
        waits: usize,
    }

    impl Platform for Host {
        fn now(&mut self) -> u64 {
            0
        }
        fn notify(&mut self, _channel_id: u32) {}
        fn begin_wait(&mut self) {
            self.waits += 1;
        }
        fn end_wait(&mut self, sleep: bool) {
            self.sleeps += usize::from(sleep);
            std::thread::yield_now();
        }
        fn relax(&mut self) {
            std::thread::yield_now();
        }
    }

    const WORDS: usize = 20 * 1024 / 8;

    #[repr(C, align(64))]
    struct Mem([AtomicU64; WORDS]);

    fn pair(ipi: bool, channel_id: u32) -> (Link<'static>, Link<'static>) {
        let mem: &'static mut Mem = Box::leak(Box::new(Mem([const { AtomicU64::new(0) }; WORDS])));
        let mut ch =
            Channel::format(Region::from_words(&mut mem.0).expect("aligned"), 64).expect("format");
        let mut link = |side| Link {
            io: ch.duplex(side).expect("each side once"),
            channel_id,
            ipi,
            side_a: side == Side::A,
        };
        (link(Side::A), link(Side::B))
    }

    #[test]
    fn an_empty_set_has_nothing_to_wait_for() {
        let mut none: [&mut Link<'static>; 0] = [];
        assert_eq!(wait_any(&mut none, &mut Host::default()), None);
    }

    #[test]
    fn a_deadline_ends_a_wait_with_nothing_ready() {
        for ipi in [false, true] {
            let (mut a, mut b) = pair(ipi, 0);
            let mut clock = Ticking::default();
            assert_eq!(wait_any_until(&mut [&mut b], Some(10), &mut clock), None);
            assert!(clock.0 >= 10);
            a.send(&1u64, &mut Host::default()).expect("send");
            assert_eq!(wait_any_until(&mut [&mut b], Some(0), &mut clock), Some(0));
        }
    }

    #[test]
    fn a_ready_link_is_found_without_waiting() {
        for ipi in [false, true] {
            let (mut a0, mut b0) = pair(ipi, 0);
            let (mut a1, mut b1) = pair(ipi, 1);
            a1.send(&5u64, &mut Host::default()).expect("send");
            let mut host = Host::default();
            let mut links = [&mut b0, &mut b1];
            assert_eq!(ready(&mut links), 0b10);
            assert_eq!(wait_any(&mut links, &mut host), Some(1));
            assert_eq!(host.waits, 0, "ready at the first look");
            assert_eq!(b1.recv::<u64>(&mut host), Ok(5));
            a0.send(&6u64, &mut host).expect("send");
            assert_eq!(wait_any(&mut [&mut b0, &mut b1], &mut host), Some(0));
        }
    }

    #[test]
    fn a_wait_ends_with_the_link_a_message_arrives_on() {
        for ipi in [false, true] {
            let links: Vec<(Link<'static>, Link<'static>)> = (0..3).map(|i| pair(ipi, i)).collect();
            let (senders, mut receivers): (Vec<_>, Vec<_>) = links.into_iter().unzip();
            let started = Arc::new(AtomicUsize::new(0));
            let go = started.clone();
            let sender = std::thread::spawn(move || {
                let mut senders = senders;
                while go.load(Ordering::Acquire) == 0 {
                    std::thread::yield_now();
                }
                senders[2].send(&42u64, &mut Host::default()).expect("send");
                senders
            });
            started.store(1, Ordering::Release);
            let mut host = Host::default();
            let mut refs: Vec<&mut Link<'static>> = receivers.iter_mut().collect();
            assert_eq!(wait_any(&mut refs, &mut host), Some(2));
            assert_eq!(receivers[2].recv::<u64>(&mut host), Ok(42));
            // Every announced wait was taken back: no link is left "waiting".
            let _senders = sender.join().expect("sender thread");
        }
    }
}
