//! The run report (`docs/run-report.md`, version 1): one console line per
//! partition, a JSON object after the `flotilla: report ` marker, framed by
//! a begin and an end line. The host tools parse these lines.

use crate::partition::{End, RunRecord, EXIT_REASON_COUNT};
use abi::fault::ExitReason;
use alloc::string::String;
use core::fmt::Write;

/// Version of the report format.
pub const REPORT_VERSION: u32 = 1;

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

/// The result text (`key=value` words) as a JSON object: integers and
/// booleans as themselves, anything else as strings.
pub fn result_json(out: &mut String, text: &str) {
    out.push('{');
    for (i, word) in text.split_ascii_whitespace().enumerate() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        if i > 0 {
            out.push(',');
        }
        json_string(out, key);
        out.push(':');
        // JSON integers: optional '-', digits only (no '+'), and within
        // i64/u64 so every JSON reader keeps them exact enough.
        let digits = value.strip_prefix('-').unwrap_or(value);
        let numeric = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (value.parse::<i64>().is_ok() || value.parse::<u64>().is_ok());
        if numeric || value == "true" || value == "false" {
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
        End::Faulted(f) => {
            out.push_str("{\"kind\":");
            json_string(&mut out, f.kind.as_str());
            let _ = write!(out, ",\"rip\":{},\"gpa\":", f.rip);
            match f.gpa {
                Some(gpa) => {
                    let _ = write!(out, "{gpa}");
                }
                None => out.push_str("null"),
            }
            out.push_str(",\"detail\":");
            json_string(&mut out, &f.detail);
            out.push('}');
        }
        _ => out.push_str("null"),
    }
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
        "}}}},\"console_lines\":{},\"result\":",
        record.console_lines
    );
    if record.result.is_empty() {
        out.push_str("null");
    } else {
        result_json(&mut out, &record.result);
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
             \"vm_exits\":{\"total\":2,\"by_reason\":{\"hypercall\":1,\"cpuid\":1},\
             \"steady\":{\"total\":1,\"by_reason\":{\"hypercall\":1}}},\"console_lines\":1,\
             \"result\":{\"primes\":78498,\"ticks\":12,\"mode\":\"fast\",\"ok\":true}}"
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
}
