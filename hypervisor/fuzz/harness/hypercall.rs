//! Hypercall dispatch under fuzzing: a partition with arbitrary grants and RAM makes a sequence of
//! hypercalls with arbitrary numbers and arguments (`hypercall::dispatch`, the same path the exit
//! handler takes). After each call [`check_call`] asserts what the call may and may not have done;
//! the exit handler's harness applies the same checks to its hypercall exits.
//!
//! Input: [`Setup`], then up to [`MAX_CALLS`] calls of four u64 each (number, rdi, rsi, rdx).

use super::bytes::{Reader, Writer};
use super::fakes::{FakeGroup, FakeHost, FakeMemory, HostEffect, Setup};
use super::oracle;
use abi::group::{member_word, M_ACKED, W_EPOCH};
use abi::hypercall::{self as hc, Error};
use hypervisor::guest_memory::GuestMemory;
use hypervisor::hypercall::{dispatch, Outcome};
use hypervisor::partition::{End, Partition, RunRecord};

/// Most calls one input makes.
pub const MAX_CALLS: usize = 32;

/// One decoded input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// The caller.
    pub setup: Setup,
    /// `(number, [rdi, rsi, rdx])`, in order.
    pub calls: Vec<(u64, [u64; 3])>,
}

impl Scenario {
    /// Decodes fuzzer bytes (any bytes decode).
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let setup = Setup::decode(&mut r);
        let mut calls = Vec::new();
        while !r.is_empty() && calls.len() < MAX_CALLS {
            calls.push((r.u64(), [r.u64(), r.u64(), r.u64()]));
        }
        Scenario { setup, calls }
    }

    /// Encodes in [`Scenario::decode`]'s layout (for seeds).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.setup.encode(&mut w);
        for (nr, args) in &self.calls {
            w.u64(*nr);
            for a in args {
                w.u64(*a);
            }
        }
        w.0
    }
}

/// The harness body: decode, run every call, check each.
pub fn run(data: &[u8]) {
    let scenario = Scenario::decode(data);
    let partition = scenario.setup.partition();
    let mem = FakeMemory(scenario.setup.ram.clone());
    let mut host = FakeHost::new(0, false);
    host.group = Some(FakeGroup::new(scenario.setup.apic_id));
    let mut record = RunRecord::default();
    for &(nr, args) in &scenario.calls {
        let before = record.clone();
        let seen = host.effects.len();
        let page = host.group.as_ref().map(FakeGroup::snapshot);
        let outcome = dispatch(nr, args, &partition, &mut record, &mem, &mut host);
        if let (Some(g), Some(page)) = (&host.group, page) {
            check_page(nr, args, outcome, g, &page, &before, &record);
        }
        check_call(
            nr,
            args,
            outcome,
            &host.effects[seen..],
            &partition,
            &mem,
            &before,
            &record,
            true,
        );
        if let Outcome::Exit(code) = outcome {
            check_report(&partition, &End::Exited(code), &record);
            return;
        }
    }
    check_report(&partition, &End::TimedOut, &record);
}

/// What a call may have done to the status page (`before`: its words before
/// the call): only an accepted `MEMBERSHIP_ACK` changes it, and only the
/// caller's acknowledged epoch, to `max(old, epoch)`, never past the page's
/// epoch; a group other than the caller's is `Denied`, an epoch ahead of the
/// page's `Invalid`; an ack is counted exactly when accepted.
fn check_page(
    nr: u64,
    args: [u64; 3],
    outcome: Outcome,
    g: &FakeGroup,
    before: &[u64],
    record_before: &RunRecord,
    record: &RunRecord,
) {
    let call = format!("hypercall {nr:#x}({:#x}, {:#x})", args[0], args[1]);
    let after = g.snapshot();
    let acked = member_word(g.record.member_id as usize) + M_ACKED;
    let counted = record.membership_acks - record_before.membership_acks;
    let changed: Vec<usize> = (0..after.len())
        .filter(|&i| after[i] != before[i])
        .collect();
    if nr != hc::MEMBERSHIP_ACK {
        assert!(
            changed.is_empty(),
            "{call}: changed status words {changed:?}"
        );
        assert_eq!(counted, 0, "{call}: counted an ack");
        return;
    }
    let (group, epoch, current) = (args[0], args[1], before[W_EPOCH]);
    let value = match outcome {
        Outcome::Return(v) => v,
        Outcome::Exit(_) => panic!("{call}: MEMBERSHIP_ACK exited"),
    };
    let expected = if group != u64::from(FakeGroup::GROUP) {
        Error::Denied.to_rax()
    } else if epoch > current {
        Error::Invalid.to_rax()
    } else {
        current
    };
    assert_eq!(value, expected, "{call}: page epoch {current}");
    assert_eq!(counted, u64::from(value == current), "{call}: ack count");
    assert!(
        changed.iter().all(|&i| i == acked),
        "{call}: changed status words {changed:?}, not only the caller's ack"
    );
    let want = if value == current {
        before[acked].max(epoch)
    } else {
        before[acked]
    };
    assert_eq!(after[acked], want, "{call}: acknowledged epoch");
    assert!(
        after[acked] <= after[W_EPOCH],
        "{call}: acked past the epoch"
    );
}

/// Whether `ptr..ptr + len` lies inside the caller's RAM, computed without overflow.
fn in_ram(mem: &impl GuestMemory, ptr: u64, len: u64) -> bool {
    ptr.checked_add(len).is_some_and(|end| end <= mem.size())
}

/// What one hypercall `nr(args)` may have done, given its `outcome`, the side effects it had
/// (`effects`) and the run record before and after:
/// - the number decides the outcome: `EXIT` ends with its argument, `VERSION` returns the
///   interface version, an unknown number returns `Unknown`; a failed call has no effect at all;
/// - only `CONSOLE_WRITE` prints, at most one line, of the caller, harmless on the console
///   ([`oracle::console_line_ok`]), taken from the caller's RAM, and only from a range inside it;
/// - only `REPORT_RESULT` changes the result, and only to a well-formed text;
/// - only `SEND_IPI` sends an IPI, exactly the IPI of one of the caller's `ipi` channels;
/// - `MEMBERSHIP_ACK` has no host effect; without `groups` it is `Denied` (with a group,
///   [`check_page`] checks the page and the value);
/// - the exit counters are not the dispatcher's business.
#[allow(clippy::too_many_arguments)]
pub fn check_call(
    nr: u64,
    args: [u64; 3],
    outcome: Outcome,
    effects: &[HostEffect],
    partition: &Partition,
    mem: &impl GuestMemory,
    before: &RunRecord,
    after: &RunRecord,
    groups: bool,
) {
    let call = format!(
        "hypercall {nr:#x}({:#x}, {:#x}, {:#x})",
        args[0], args[1], args[2]
    );
    assert_eq!(after.exits, before.exits, "{call}: dispatch counted exits");
    assert!(
        effects.len() <= 1,
        "{call}: several side effects {effects:?}"
    );
    if nr != hc::CONSOLE_WRITE {
        assert_eq!(
            after.console_lines, before.console_lines,
            "{call}: console count moved"
        );
        assert_eq!(
            after.console_dropped, before.console_dropped,
            "{call}: drop count moved"
        );
    }
    if nr != hc::REPORT_RESULT {
        assert_eq!(after.result, before.result, "{call}: result changed");
    }
    let value = match outcome {
        Outcome::Exit(code) => {
            assert_eq!(nr, hc::EXIT, "{call}: only EXIT ends the partition");
            assert_eq!(code, args[0], "{call}: exit code is rdi");
            assert!(effects.is_empty(), "{call}: EXIT had effects {effects:?}");
            return;
        }
        Outcome::Return(value) => value,
    };
    assert_ne!(nr, hc::EXIT, "{call}: EXIT returned to the guest");
    if Error::from_rax(value).is_some() {
        assert!(
            effects.is_empty(),
            "{call} failed ({value:#x}) but had effects {effects:?}"
        );
        assert_eq!(
            after, before,
            "{call} failed ({value:#x}) but changed the record"
        );
    }
    match nr {
        hc::VERSION => assert_eq!(value, hc::HYPERCALL_VERSION, "{call}"),
        hc::CONSOLE_WRITE => {
            let [ptr, len, _] = args;
            if !in_ram(mem, ptr, len) {
                assert!(
                    Error::from_rax(value).is_some(),
                    "{call}: outside RAM, yet {value:#x}"
                );
            }
            for e in effects {
                let HostEffect::Console {
                    partition: who,
                    line,
                    printed,
                } = e
                else {
                    panic!("{call}: CONSOLE_WRITE had effect {e:?}");
                };
                assert_eq!(value, 0, "{call}: printed, yet returned {value:#x}");
                assert_eq!(who, &partition.name, "{call}: printed as another partition");
                assert!(
                    oracle::console_line_ok(line, hc::MAX_CONSOLE_LINE),
                    "{call}: printed a line the console must not carry: {line:?}"
                );
                // The line is the guest's own text (possibly without its line ending): a prefix of
                // the range it passed, read from its RAM.
                let n = line.len() as u64;
                assert!(
                    n <= len && in_ram(mem, ptr, n),
                    "{call}: printed beyond its range"
                );
                let mut guest = vec![0u8; line.len()];
                hypervisor::guest_memory::read_checked(mem, ptr, &mut guest).expect("checked");
                assert_eq!(
                    guest,
                    line.as_bytes(),
                    "{call}: printed text it was not given"
                );
                let (lines, dropped) = if *printed {
                    (
                        before.console_lines.saturating_add(1),
                        before.console_dropped,
                    )
                } else {
                    (
                        before.console_lines,
                        before.console_dropped.saturating_add(1),
                    )
                };
                assert_eq!(
                    (after.console_lines, after.console_dropped),
                    (lines, dropped),
                    "{call}: one line (printed: {printed}) counted wrong"
                );
            }
        }
        hc::REPORT_RESULT => {
            assert!(
                effects.is_empty(),
                "{call}: REPORT_RESULT had effects {effects:?}"
            );
            let [ptr, len, _] = args;
            if !in_ram(mem, ptr, len) {
                assert!(
                    Error::from_rax(value).is_some(),
                    "{call}: outside RAM, yet {value:#x}"
                );
            }
            if after.result != before.result {
                assert_eq!(value, 0, "{call}: result kept, yet returned {value:#x}");
                assert!(
                    oracle::result_text_ok(&after.result, hc::MAX_RESULT),
                    "{call}: kept a malformed result {:?}",
                    after.result
                );
            }
        }
        hc::SEND_IPI => {
            let grant = partition
                .channels
                .iter()
                .find(|c| c.ipi && u64::from(c.channel_id) == args[0]);
            match (grant, effects) {
                (Some(c), [HostEffect::Ipi { apic_id, vector }]) => {
                    assert_eq!(value, 0, "{call}: sent, yet returned {value:#x}");
                    assert_eq!(
                        (*apic_id, *vector),
                        (c.peer_apic_id, c.peer_vector),
                        "{call}: IPI is not the channel's"
                    );
                }
                (Some(_), []) => assert!(
                    Error::from_rax(value).is_some(),
                    "{call}: a granted IPI neither sent nor refused"
                ),
                (None, []) => assert_eq!(value, Error::Denied.to_rax(), "{call}: no such channel"),
                (_, e) => panic!("{call}: SEND_IPI had effects {e:?}"),
            }
        }
        hc::MEMBERSHIP_ACK => {
            // Its value with a group: `check_page`.
            assert!(
                groups || value == Error::Denied.to_rax(),
                "{call}: a host without groups"
            );
            assert!(
                effects.is_empty(),
                "{call}: MEMBERSHIP_ACK had effects {effects:?}"
            );
        }
        _ => {
            assert_eq!(value, Error::Unknown.to_rax(), "{call}: unknown number");
            assert!(
                effects.is_empty(),
                "{call}: unknown number had effects {effects:?}"
            );
        }
    }
}

/// The partition's report line must be one JSON object, whatever the guest sent
/// (`docs/run-report.md`), with its result object present exactly when a result was kept.
pub fn check_report(partition: &Partition, end: &End, record: &RunRecord) {
    let json = hypervisor::report::partition_json(&partition.name, partition.cpu, end, record);
    let value: serde_json::Value = match serde_json::from_str(&json) {
        Ok(v) => v,
        Err(e) => panic!("the report line is not JSON ({e}): {json}"),
    };
    let result = &value["result"];
    assert_eq!(
        result.is_null(),
        record.result.is_empty(),
        "result {:?} reported as {result}",
        record.result
    );
}
