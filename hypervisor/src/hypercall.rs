//! Hypercall dispatch (`docs/hypercalls.md`, numbers in `abi::hypercall`):
//! a plain function over the caller's registers, its RAM and its policy,
//! unit-tested with a fake guest memory. Every pointer and length is checked
//! against the caller's own RAM; nothing a guest passes can panic it.

use crate::guest_memory::{read_checked, GuestMemory};
use crate::partition::{Partition, RunRecord};
use abi::hypercall::{self as hc, Error};
use alloc::string::String;

/// Side effects a hypercall may have outside the partition.
pub trait HypercallHost {
    /// Prints one console line of `partition`, or drops it (over the
    /// partition's console budget, or no room in the queue): `false`.
    fn console_line(&mut self, partition: &str, line: &str) -> bool;
    /// Sends a fixed IPI with `vector` to the core with x2APIC ID `apic_id`.
    fn send_ipi(&mut self, apic_id: u32, vector: u8);
    /// `MEMBERSHIP_ACK(group, epoch)` (`membership::ack`); a host without
    /// groups refuses every group.
    fn membership_ack(&mut self, group: u64, epoch: u64) -> Result<u64, Error> {
        let _ = (group, epoch);
        Err(Error::Denied)
    }
}

/// What the caller gets back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Resume the guest with this value in `rax`.
    Return(u64),
    /// The partition exits with this code.
    Exit(u64),
}

fn read_text(mem: &impl GuestMemory, ptr: u64, len: u64, max: u64) -> Result<String, Error> {
    if len > max {
        return Err(Error::TooLong);
    }
    let mut buf = alloc::vec![0u8; usize::try_from(len).map_err(|_| Error::TooLong)?];
    read_checked(mem, ptr, &mut buf).map_err(|_| Error::Fault)?;
    String::from_utf8(buf).map_err(|_| Error::Invalid)
}

/// Whether `text` is `key=value` words: keys `[a-z0-9_-]+`, each key once,
/// values printable ASCII without spaces, quotes or backslashes.
pub fn valid_result_text(text: &str) -> bool {
    let mut keys: alloc::vec::Vec<&str> = alloc::vec::Vec::new();
    text.split_ascii_whitespace().all(|word| {
        let Some((key, value)) = word.split_once('=') else {
            return false;
        };
        if keys.contains(&key) {
            return false;
        }
        keys.push(key);
        !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    })
}

/// Runs hypercall `nr` with arguments `args` (rdi, rsi, rdx) for `partition`.
pub fn dispatch(
    nr: u64,
    args: [u64; 3],
    partition: &Partition,
    record: &mut RunRecord,
    mem: &impl GuestMemory,
    host: &mut impl HypercallHost,
) -> Outcome {
    let result = match nr {
        hc::VERSION => Ok(hc::HYPERCALL_VERSION),
        hc::CONSOLE_WRITE => {
            read_text(mem, args[0], args[1], hc::MAX_CONSOLE_LINE).and_then(|text| {
                let line = text.trim_end_matches(['\n', '\r']);
                // One call is one line: a control character (a newline inside,
                // an escape sequence) could forge a line of the hypervisor's own.
                if line.chars().any(|c| c.is_control() && c != '\t') {
                    return Err(Error::Invalid);
                }
                // A dropped line is counted, not an error: the guest is not
                // invited to retry in a loop (docs/hypercalls.md).
                if host.console_line(&partition.name, line) {
                    record.console_lines = record.console_lines.saturating_add(1);
                } else {
                    record.console_dropped = record.console_dropped.saturating_add(1);
                }
                Ok(0)
            })
        }
        hc::EXIT => return Outcome::Exit(args[0]),
        hc::REPORT_RESULT => read_text(mem, args[0], args[1], hc::MAX_RESULT).and_then(|text| {
            if valid_result_text(&text) {
                record.result = text;
                Ok(0)
            } else {
                Err(Error::Invalid)
            }
        }),
        hc::SEND_IPI => {
            match partition
                .channels
                .iter()
                .find(|c| u64::from(c.channel_id) == args[0] && c.ipi)
            {
                Some(channel) => {
                    host.send_ipi(channel.peer_apic_id, channel.peer_vector);
                    Ok(0)
                }
                None => Err(Error::Denied),
            }
        }
        hc::MEMBERSHIP_ACK => host.membership_ack(args[0], args[1]).inspect(|_| {
            record.membership_acks = record.membership_acks.saturating_add(1);
        }),
        _ => Err(Error::Unknown),
    };
    Outcome::Return(result.unwrap_or_else(Error::to_rax))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_memory::FakeGuestMemory;
    use crate::partition::ChannelGrant;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    #[derive(Default)]
    struct Host {
        lines: Vec<(String, String)>,
        ipis: Vec<(u32, u8)>,
        /// Lines the console still takes before it drops.
        room: Option<usize>,
    }

    impl HypercallHost for Host {
        fn console_line(&mut self, partition: &str, line: &str) -> bool {
            if let Some(room) = self.room.as_mut() {
                if *room == 0 {
                    return false;
                }
                *room -= 1;
            }
            self.lines.push((partition.to_string(), line.to_string()));
            true
        }
        fn send_ipi(&mut self, apic_id: u32, vector: u8) {
            self.ipis.push((apic_id, vector));
        }
    }

    fn setup() -> (Partition, RunRecord, FakeGuestMemory, Host) {
        let mut ram = vec![0u8; 8192];
        ram[0x100..0x106].copy_from_slice(b"hello\n");
        ram[0x200..0x20c].copy_from_slice(b"primes=78498");
        ram[0x300..0x302].copy_from_slice(&[0xff, 0xfe]);
        ram[0x400..0x40a].copy_from_slice(b"bad result");
        ram[0x500..0x51f].copy_from_slice(b"ok\nflotilla: run succeeded\n\n\n\n\n");
        ram[0x520..0x527].copy_from_slice(b"\x1b[2Jhi!");
        let p = Partition {
            id: 0,
            name: "ping".to_string(),
            cpu: 0,
            apic_id: 0,
            memory: 8192,
            compat: false,
            channels: vec![ChannelGrant {
                channel_id: 3,
                ipi: true,
                peer_apic_id: 5,
                peer_vector: 0x43,
            }],
        };
        (
            p,
            RunRecord::default(),
            FakeGuestMemory(ram),
            Host::default(),
        )
    }

    #[test]
    fn console_write_prints_one_line_with_the_partition_name() {
        let (p, mut r, mem, mut host) = setup();
        assert_eq!(
            dispatch(
                hc::CONSOLE_WRITE,
                [0x100, 6, 0],
                &p,
                &mut r,
                &mem,
                &mut host
            ),
            Outcome::Return(0)
        );
        assert_eq!(host.lines, vec![("ping".to_string(), "hello".to_string())]);
        assert_eq!(r.console_lines, 1);
    }

    #[test]
    fn dropped_lines_are_counted_and_not_errors() {
        let (p, mut r, mem, mut host) = setup();
        host.room = Some(1);
        for _ in 0..3 {
            assert_eq!(
                dispatch(
                    hc::CONSOLE_WRITE,
                    [0x100, 6, 0],
                    &p,
                    &mut r,
                    &mem,
                    &mut host
                ),
                Outcome::Return(0)
            );
        }
        assert_eq!(host.lines.len(), 1);
        assert_eq!((r.console_lines, r.console_dropped), (1, 2));
    }

    #[test]
    fn hostile_pointers_and_lengths_are_errors() {
        let (p, mut r, mem, mut host) = setup();
        let fault = Outcome::Return(Error::Fault.to_rax());
        assert_eq!(
            dispatch(
                hc::CONSOLE_WRITE,
                [8190, 10, 0],
                &p,
                &mut r,
                &mem,
                &mut host
            ),
            fault
        );
        assert_eq!(
            dispatch(
                hc::CONSOLE_WRITE,
                [u64::MAX - 2, 10, 0],
                &p,
                &mut r,
                &mem,
                &mut host
            ),
            fault
        );
        assert_eq!(
            dispatch(
                hc::CONSOLE_WRITE,
                [0, u64::MAX, 0],
                &p,
                &mut r,
                &mem,
                &mut host
            ),
            Outcome::Return(Error::TooLong.to_rax())
        );
        assert_eq!(
            dispatch(
                hc::CONSOLE_WRITE,
                [0x300, 2, 0],
                &p,
                &mut r,
                &mem,
                &mut host
            ),
            Outcome::Return(Error::Invalid.to_rax())
        );
        // A newline inside the text would start a line the hypervisor did
        // not prefix: a forged marker. Refused, nothing printed.
        assert_eq!(
            dispatch(
                hc::CONSOLE_WRITE,
                [0x500, 31, 0],
                &p,
                &mut r,
                &mem,
                &mut host
            ),
            Outcome::Return(Error::Invalid.to_rax())
        );
        assert_eq!(
            dispatch(
                hc::CONSOLE_WRITE,
                [0x520, 7, 0],
                &p,
                &mut r,
                &mem,
                &mut host
            ),
            Outcome::Return(Error::Invalid.to_rax())
        );
        assert_eq!(
            dispatch(999, [0, 0, 0], &p, &mut r, &mem, &mut host),
            Outcome::Return(Error::Unknown.to_rax())
        );
        assert!(host.lines.is_empty());
    }

    #[test]
    fn results_are_validated_and_kept() {
        let (p, mut r, mem, mut host) = setup();
        assert_eq!(
            dispatch(
                hc::REPORT_RESULT,
                [0x200, 12, 0],
                &p,
                &mut r,
                &mem,
                &mut host
            ),
            Outcome::Return(0)
        );
        assert_eq!(r.result, "primes=78498");
        assert_eq!(
            dispatch(
                hc::REPORT_RESULT,
                [0x400, 10, 0],
                &p,
                &mut r,
                &mem,
                &mut host
            ),
            Outcome::Return(Error::Invalid.to_rax())
        );
        assert_eq!(
            r.result, "primes=78498",
            "a rejected result keeps the previous one"
        );
        assert!(valid_result_text("a=1 b-c=x_y ok=true"));
        assert!(!valid_result_text("a=\"q\""));
        assert!(!valid_result_text("A=1"));
        assert!(!valid_result_text("a=1 b=2 a=3"), "a key twice");
        assert!(
            valid_result_text("a=007 b=-0 c=+1"),
            "kept as text in the report"
        );
    }

    #[test]
    fn exit_and_ipis() {
        let (p, mut r, mem, mut host) = setup();
        assert_eq!(
            dispatch(hc::EXIT, [7, 0, 0], &p, &mut r, &mem, &mut host),
            Outcome::Exit(7)
        );
        assert_eq!(
            dispatch(hc::SEND_IPI, [3, 0, 0], &p, &mut r, &mem, &mut host),
            Outcome::Return(0)
        );
        assert_eq!(host.ipis, vec![(5, 0x43)]);
        assert_eq!(
            dispatch(hc::SEND_IPI, [4, 0, 0], &p, &mut r, &mem, &mut host),
            Outcome::Return(Error::Denied.to_rax())
        );
        assert_eq!(
            dispatch(hc::VERSION, [0; 3], &p, &mut r, &mem, &mut host),
            Outcome::Return(hc::HYPERCALL_VERSION)
        );
    }

    #[test]
    fn membership_acks_go_to_the_host_and_only_accepted_ones_count() {
        let (p, mut r, mem, mut host) = setup();
        let ack = |host: &mut Host, r: &mut RunRecord, group| {
            dispatch(hc::MEMBERSHIP_ACK, [group, 2, 0], &p, r, &mem, host)
        };
        assert_eq!(
            ack(&mut host, &mut r, 0),
            Outcome::Return(Error::Denied.to_rax()),
            "a host without groups refuses"
        );
        assert_eq!(r.membership_acks, 0);
        struct Groups(Host);
        impl HypercallHost for Groups {
            fn console_line(&mut self, partition: &str, line: &str) -> bool {
                self.0.console_line(partition, line)
            }
            fn send_ipi(&mut self, apic_id: u32, vector: u8) {
                self.0.send_ipi(apic_id, vector);
            }
            fn membership_ack(&mut self, group: u64, epoch: u64) -> Result<u64, Error> {
                match group {
                    1 if epoch <= 5 => Ok(5),
                    1 => Err(Error::Invalid),
                    _ => Err(Error::Denied),
                }
            }
        }
        let mut groups = Groups(Host::default());
        let mut call = |args| dispatch(hc::MEMBERSHIP_ACK, args, &p, &mut r, &mem, &mut groups);
        assert_eq!(call([1, 2, 0]), Outcome::Return(5));
        assert_eq!(call([1, 9, 0]), Outcome::Return(Error::Invalid.to_rax()));
        assert_eq!(call([7, 2, 0]), Outcome::Return(Error::Denied.to_rax()));
        assert_eq!(r.membership_acks, 1);
        assert!(groups.0.ipis.is_empty() && groups.0.lines.is_empty());
    }
}
