//! The run report (`docs/run-report.md`, version 4): one console line per
//! partition, a JSON object after the `flotilla: report ` marker, framed by
//! a begin and an end line. The host tools parse these lines.
//!
//! Invariant: every line is valid JSON whatever text it is given (the
//! result's `REPORT_RESULT` text is checked at the hypercall, but the writer
//! does not rely on it): strings are escaped, a value becomes a JSON number
//! only in canonical form, a repeated key is left out.

use crate::partition::{End, Fault, RunRecord, EXIT_REASON_COUNT};
use abi::fault::ExitReason;
use alloc::string::String;
use core::fmt::Write;

pub use abi::fault::REPORT_VERSION;

/// Appends `s` as a JSON string literal.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `value` is an integer in canonical form: `0`, or an optional
/// `-` and digits without a leading zero, within `i64` or `u64`. Exactly
/// these are written as JSON numbers, so the number a reader gets prints
/// back as the same text. `-0`, `007`, `+1`, `1e3` are not (they stay text).
pub fn is_canonical_integer(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let well_formed = match digits.as_bytes() {
        [b'0'] => digits.len() == value.len(),
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
        [] => false,
    };
    well_formed && (value.parse::<i64>().is_ok() || value.parse::<u64>().is_ok())
}

/// The result text (`key=value` words) as a JSON object: canonical
/// integers ([`is_canonical_integer`]) and `true`/`false` as themselves,
/// anything else as a string with the value's exact text. A key seen before
/// in the same text is left out (the hypercall refuses such text anyway).
pub fn result_json(out: &mut String, text: &str) {
    out.push('{');
    let mut seen: alloc::vec::Vec<&str> = alloc::vec::Vec::new();
    for word in text.split_ascii_whitespace() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        if seen.contains(&key) {
            continue;
        }
        if !seen.is_empty() {
            out.push(',');
        }
        seen.push(key);
        json_string(out, key);
        out.push(':');
        if is_canonical_integer(value) || value == "true" || value == "false" {
            out.push_str(value);
        } else {
            json_string(out, value);
        }
    }
    out.push('}');
}

fn exits_json(out: &mut String, counts: &[u64; EXIT_REASON_COUNT]) {
    out.push('{');
    let mut first = true;
    for (reason, count) in ExitReason::ALL.iter().zip(counts.iter()) {
        if *count == 0 {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        json_string(out, reason.as_str());
        let _ = write!(out, ":{count}");
    }
    out.push('}');
}

fn fault_json(out: &mut String, f: &Fault) {
    out.push_str("{\"kind\":");
    json_string(out, f.kind.as_str());
    let _ = write!(out, ",\"rip\":{},\"gpa\":", f.rip);
    match f.gpa {
        Some(gpa) => {
            let _ = write!(out, "{gpa}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"detail\":");
    json_string(out, &f.detail);
    out.push('}');
}

/// One partition's report object (without the console marker).
pub fn partition_json(name: &str, cpu: u32, end: &End, record: &RunRecord) -> String {
    let mut out = String::new();
    out.push_str("{\"name\":");
    json_string(&mut out, name);
    let _ = write!(out, ",\"cpu\":{cpu},\"state\":");
    let (state, code) = match end {
        End::Exited(code) => ("exited", Some(*code)),
        End::Faulted(_) => ("faulted", None),
        End::TimedOut => ("timed-out", None),
    };
    json_string(&mut out, state);
    match code {
        Some(code) => {
            let _ = write!(out, ",\"exit_code\":{code}");
        }
        None => out.push_str(",\"exit_code\":null"),
    }
    out.push_str(",\"fault\":");
    match end {
        End::Faulted(f) => fault_json(&mut out, f),
        _ => out.push_str("null"),
    }
    let _ = write!(out, ",\"restarts\":{},\"faults\":[", record.restarts());
    for (i, f) in record.faults.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        fault_json(&mut out, f);
    }
    out.push(']');
    let _ = write!(
        out,
        ",\"vm_exits\":{{\"total\":{},\"by_reason\":",
        record.total_exits()
    );
    exits_json(&mut out, &record.exits);
    let _ = write!(
        out,
        ",\"steady\":{{\"total\":{},\"by_reason\":",
        record.total_steady_exits()
    );
    exits_json(&mut out, &record.steady_exits);
    let _ = write!(
        out,
        "}}}},\"console_lines\":{},\"console_dropped\":{},\"membership_acks\":{},\
         \"ack_timeouts\":{},\"result\":",
        record.console_lines, record.console_dropped, record.membership_acks, record.ack_timeouts
    );
    if record.result.is_empty() {
        out.push_str("null");
    } else {
        result_json(&mut out, &record.result);
    }
    let c = record.compat;
    if c != crate::compat::CompatCounts::default() {
        let _ = write!(
            out,
            ",\"compat\":{{\"msr_gp\":{},\"ports_floated\":{},\"uart_bytes\":{},\"lvt_masked\":{}}}",
            c.msr_gp, c.ports_floated, c.uart_bytes, c.lvt_masked
        );
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Fault;
    use alloc::string::ToString;

    #[test]
    fn exited_partition_report() {
        let mut r = RunRecord::default();
        r.count_exit(ExitReason::Cpuid);
        r.count_exit(ExitReason::Hypercall);
        r.console_lines = 1;
        r.result = "primes=78498 ticks=12 mode=fast ok=true".to_string();
        let json = partition_json("calc", 2, &End::Exited(0), &r);
        assert_eq!(
            json,
            "{\"name\":\"calc\",\"cpu\":2,\"state\":\"exited\",\"exit_code\":0,\"fault\":null,\
             \"restarts\":0,\"faults\":[],\"vm_exits\":{\"total\":2,\"by_reason\":{\"hypercall\":1,\"cpuid\":1},\
             \"steady\":{\"total\":1,\"by_reason\":{\"hypercall\":1}}},\"console_lines\":1,\"console_dropped\":0,\
             \"membership_acks\":0,\"ack_timeouts\":0,\"result\":{\"primes\":78498,\"ticks\":12,\"mode\":\"fast\",\"ok\":true}}"
        );
    }

    #[test]
    fn compat_use_is_reported_only_when_there_is_some() {
        let mut r = RunRecord::default();
        let strict = partition_json("calc", 0, &End::Exited(0), &r);
        assert!(!strict.contains("compat"), "{strict}");
        r.compat.msr_gp = 3;
        r.compat.uart_bytes = 120;
        let json = partition_json("linux", 1, &End::Exited(0), &r);
        assert!(
            json.ends_with(
                ",\"result\":null,\"compat\":{\"msr_gp\":3,\"ports_floated\":0,\"uart_bytes\":120,\"lvt_masked\":0}}"
            ),
            "{json}"
        );
    }

    #[test]
    fn faulted_partition_report_escapes_text() {
        let end = End::Faulted(Fault {
            kind: abi::fault::FaultKind::Npf,
            rip: 0x1000,
            gpa: Some(0x200_0000),
            detail: "say \"hi\"\n".to_string(),
        });
        let json = partition_json("rogue", 1, &end, &RunRecord::default());
        assert!(
            json.contains("\"state\":\"faulted\",\"exit_code\":null"),
            "{json}"
        );
        assert!(json.contains("\"fault\":{\"kind\":\"npf\",\"rip\":4096,\"gpa\":33554432,\"detail\":\"say \\\"hi\\\"\\n\"}"), "{json}");
        assert!(json.ends_with("\"result\":null}"), "{json}");
    }

    #[test]
    fn a_restarted_partition_lists_its_earlier_faults() {
        use abi::fault::FaultKind;
        let fault = |kind, rip, gpa| Fault {
            kind,
            rip,
            gpa,
            detail: "d".to_string(),
        };
        let mut r = RunRecord::default();
        r.restarted(fault(FaultKind::Npf, 16, Some(32)));
        r.restarted(fault(FaultKind::PortDenied, 17, None));
        let last = End::Faulted(fault(FaultKind::Npf, 18, Some(32)));
        let json = partition_json("rogue", 1, &last, &r);
        assert!(
            json.contains(
                "\"fault\":{\"kind\":\"npf\",\"rip\":18,\"gpa\":32,\"detail\":\"d\"},\
                 \"restarts\":2,\"faults\":[{\"kind\":\"npf\",\"rip\":16,\"gpa\":32,\"detail\":\"d\"},\
                 {\"kind\":\"port-denied\",\"rip\":17,\"gpa\":null,\"detail\":\"d\"}],\"vm_exits\""
            ),
            "{json}"
        );
    }

    #[test]
    fn only_json_integers_become_numbers() {
        let mut out = String::new();
        result_json(
            &mut out,
            "a=-5 b=- c=12345678901234567890 d= e=99999999999999999999 f=+1",
        );
        assert_eq!(
            out,
            "{\"a\":-5,\"b\":\"-\",\"c\":12345678901234567890,\"d\":\"\",\"e\":\"99999999999999999999\",\"f\":\"+1\"}"
        );
    }

    #[test]
    fn non_canonical_integers_stay_text() {
        let mut out = String::new();
        result_json(
            &mut out,
            "a=007 b=-0 c=0 d=-007 e=00 f=1e3 g=-9223372036854775808 h=-9223372036854775809 i=18446744073709551615 j=18446744073709551616 k=True",
        );
        assert_eq!(
            out,
            "{\"a\":\"007\",\"b\":\"-0\",\"c\":0,\"d\":\"-007\",\"e\":\"00\",\"f\":\"1e3\",\
             \"g\":-9223372036854775808,\"h\":\"-9223372036854775809\",\
             \"i\":18446744073709551615,\"j\":\"18446744073709551616\",\"k\":\"True\"}"
        );
    }

    #[test]
    fn repeated_keys_and_hostile_text_still_make_an_object() {
        let mut out = String::new();
        result_json(&mut out, "a=1 a=2 \"=\\ b ==");
        assert_eq!(out, "{\"a\":1,\"\\\"\":\"\\\\\",\"b\":\"\",\"\":\"=\"}");
    }

    #[test]
    fn a_partition_without_a_result_keeps_its_state_and_counts() {
        let mut r = RunRecord::default();
        r.count_exit(ExitReason::Hypercall);
        r.console_dropped = 7;
        r.membership_acks = 4;
        r.ack_timeouts = 1;
        let json = partition_json("flood", 1, &End::Exited(3), &r);
        assert!(
            json.contains("\"state\":\"exited\",\"exit_code\":3"),
            "{json}"
        );
        assert!(
            json.contains(
                "\"console_lines\":0,\"console_dropped\":7,\"membership_acks\":4,\
                 \"ack_timeouts\":1,\"result\":null}"
            ),
            "{json}"
        );
        assert!(json.contains("\"total\":1"), "{json}");
    }

    mod properties {
        extern crate std;
        use super::*;
        use crate::guest_memory::FakeGuestMemory;
        use crate::hypercall::{self, HypercallHost, Outcome};
        use crate::partition::Partition;
        use abi::hypercall as hc;
        use alloc::vec;
        use alloc::vec::Vec;
        use proptest::prelude::*;
        use serde_json::Value;

        struct NoHost;
        impl HypercallHost for NoHost {
            fn console_line(&mut self, _: &str, _: &str) -> bool {
                true
            }
            fn send_ipi(&mut self, _: u32, _: u8) {}
        }

        /// The record after `REPORT_RESULT` with `bytes` (whatever it said).
        fn after_report_result(bytes: &[u8]) -> (RunRecord, Outcome) {
            let mut ram = vec![0u8; 4096];
            ram[..bytes.len()].copy_from_slice(bytes);
            let p = Partition {
                id: 0,
                name: "p".to_string(),
                cpu: 0,
                apic_id: 0,
                memory: 4096,
                compat: false,
                channels: Vec::new(),
            };
            let mut r = RunRecord::default();
            let out = hypercall::dispatch(
                hc::REPORT_RESULT,
                [0, bytes.len() as u64, 0],
                &p,
                &mut r,
                &FakeGuestMemory(ram),
                &mut NoHost,
            );
            (r, out)
        }

        fn report_line(record: &RunRecord) -> Value {
            let json = partition_json("p", 0, &End::Exited(0), record);
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
        }

        /// Result text the hypercall accepts: `key=value` words from the
        /// allowed alphabets, numbers of every shape among them.
        fn accepted_text() -> impl Strategy<Value = std::string::String> {
            let key = "[a-z0-9_-]{1,8}";
            let value = prop_oneof![
                "[!#-\\[\\]-~]{0,12}",
                "[-+]?[0-9]{1,22}",
                Just("-0".to_string()),
                Just("true".to_string()),
                Just("18446744073709551616".to_string()),
            ];
            proptest::collection::vec((key, value), 0..20).prop_map(|words| {
                let mut seen = Vec::new();
                let mut text = std::string::String::new();
                for (k, v) in words {
                    if seen.contains(&k) {
                        continue;
                    }
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(&k);
                    text.push('=');
                    text.push_str(&v);
                    seen.push(k);
                }
                text
            })
        }

        proptest! {
            /// Any bytes at all: the call succeeds or is refused, and either
            /// way the partition's report line is JSON with its state.
            #[test]
            fn any_result_bytes_give_a_json_report_line(
                bytes in proptest::collection::vec(
                    prop_oneof![4 => 0x20u8..0x7f, 1 => any::<u8>()],
                    0..600,
                )
            ) {
                let (record, out) = after_report_result(&bytes);
                let line = report_line(&record);
                prop_assert_eq!(&line["state"], "exited");
                prop_assert_eq!(&line["vm_exits"]["total"], 0);
                if out != Outcome::Return(0) {
                    prop_assert!(line["result"].is_null());
                }
            }

            /// Accepted text: every word comes back, integers as the same
            /// numbers, everything else as the same text.
            #[test]
            fn accepted_results_round_trip(text in accepted_text()) {
                let (record, out) = after_report_result(text.as_bytes());
                prop_assert_eq!(out, Outcome::Return(0));
                let line = report_line(&record);
                let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
                if words.is_empty() {
                    prop_assert!(line["result"].is_null());
                } else {
                    let result = line["result"].as_object().unwrap();
                    prop_assert_eq!(result.len(), words.len());
                    for word in words {
                        let (k, v) = word.split_once('=').unwrap();
                        let got = &result[k];
                        let back = match got {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        prop_assert_eq!(&back, v, "{} in {}", k, text);
                        if let Ok(n) = v.parse::<i64>() {
                            if is_canonical_integer(v) {
                                prop_assert_eq!(got.as_i64(), Some(n));
                            }
                        }
                    }
                }
            }

            /// The writer alone, given any text (as if the check were
            /// bypassed), still writes an object.
            #[test]
            fn the_writer_makes_json_of_any_text(text in ".{0,200}") {
                let mut out = String::new();
                result_json(&mut out, &text);
                let value: Value = serde_json::from_str(&out).unwrap();
                prop_assert!(value.is_object());
            }
        }
    }
}
