//! Tidy checks over the source tree, so rules that exist in STYLE.md do not
//! live only in prose: every Rust file begins with a `//!` module doc, no
//! `static mut` anywhere, and `unsafe` only where the trust boundary allows
//! it (the machine layers, the channel region core, the build scripts'
//! absence of it).

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name == "target" || name == "fuzz" || name.starts_with('.') {
                continue;
            }
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in [
        "abi",
        "channels",
        "partition-config",
        "replication",
        "hypervisor",
        "flotilla-rt",
        "guest-kernel",
        "tools",
        "linux-user",
        "tests",
    ] {
        rust_files(&root.join(krate), &mut files);
    }
    assert!(
        files.len() > 50,
        "found only {} Rust files under {}",
        files.len(),
        root.display()
    );
    files
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.strip_prefix(&root).unwrap_or(&p).to_path_buf(), text)
        })
        .collect()
}

#[test]
fn every_rust_file_begins_with_a_module_doc() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| {
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` module doc: {missing:#?}"
    );
}

#[test]
fn no_static_mut() {
    // A `static mut` item, not a `&'static mut` reference.
    let needle = ["static", " mut "].concat();
    let reference = ["'", &needle].concat();
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(p, _)| !p.ends_with("tidy.rs"))
        .filter(|(_, text)| {
            text.lines().any(|l| {
                !l.trim_start().starts_with("//") && l.contains(&needle) && !l.contains(&reference)
            })
        })
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "`static mut` in: {offenders:#?}");
}

#[test]
fn unsafe_stays_inside_the_trust_boundary() {
    let allowed = |p: &Path| {
        let s = p.to_string_lossy();
        s.starts_with("hypervisor/src/arch/")
            || s.starts_with("flotilla-rt/src/arch/")
            || s.starts_with("linux-user/src/arch/")
            || s == "channels/src/region.rs"
            || s.contains("/tests/")
            || s.contains("/benches/")
    };
    let keyword = ["uns", "afe "].concat();
    let block = ["uns", "afe {"].concat();
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(p, _)| !allowed(p))
        .filter(|(_, text)| {
            text.lines().any(|l| {
                let code = l.split("//").next().unwrap_or("");
                code.contains(&block)
                    || code.contains(&(keyword.clone() + "fn"))
                    || code.contains(&(keyword.clone() + "impl"))
            })
        })
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "`unsafe` outside the machine layers: {offenders:#?}"
    );
}

/// Name prefixes of the common hardware constants (MSR numbers, control
/// register and EFER bits, APIC registers) that must come from the `x86`
/// crate or the one registers module (`abi::regs`), never be written twice.
const HARDWARE_PREFIXES: &[&str] = &[
    "IA32_", "MSR_", "CR0_", "CR4_", "XCR0_", "EFER_", "APIC_", "X2APIC_", "XAPIC_",
];

/// Well-known MSR numbers: a `u32` constant (the type of an MSR number)
/// or assembler symbol with one of these values is an MSR definition
/// whatever its name (Intel SDM Vol. 4 Table 2-2; AMD APM Vol. 2 §15.30 for
/// VM_CR and VM_HSAVE_PA). The x2APIC range starts at the ICR: below it the
/// numbers collide with the VMCS encodings of the 16-bit guest-state fields
/// (those registers are caught by their `X2APIC_` names).
fn well_known_msr(value: u64) -> bool {
    matches!(
        value,
        0x1b | 0x3a | 0x48 | 0x49 | 0x174..=0x176 | 0x277 | 0x2ff | 0x480..=0x491 | 0x6e0
            | 0x830..=0x83f | 0xc000_0080..=0xc000_0084 | 0xc000_0100..=0xc000_0103
            | 0xc001_0114 | 0xc001_0117
    )
}

/// A numeric literal (`0x1b`, `1_000`, `0b101`), its value.
fn literal_value(token: &str) -> Option<u64> {
    let t = token.replace('_', "");
    let t = t.trim_end_matches(|c: char| c.is_ascii_alphabetic() && !c.is_ascii_hexdigit());
    if let Some(hex) = t.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(bin) = t.strip_prefix("0b") {
        u64::from_str_radix(bin, 2).ok()
    } else {
        t.parse().ok()
    }
}

/// Whether `expr` is made of numeric literals and operators only (`1 << 5`,
/// `(1 << 0) | (1 << 8)`, `0xc000_0080`): a value written by hand.
fn is_literal_expr(expr: &str) -> bool {
    let mut any_digit = false;
    for word in expr.split(|c: char| "()|&<>+-*~! \t".contains(c)) {
        if word.is_empty() {
            continue;
        }
        if !word.starts_with(|c: char| c.is_ascii_digit()) || literal_value(word).is_none() {
            return false;
        }
        any_digit = true;
    }
    any_digit
}

/// A hand-written constant definition on one line: a Rust
/// `[pub[(..)]] const NAME: TYPE = LITERAL;` or an assembler
/// `.set NAME, LITERAL`. Returns (name, type (none in assembly), value
/// expression).
fn constant_definition(line: &str) -> Option<(&str, Option<&str>, &str)> {
    let l = line.trim();
    let (name, ty, expr) = if let Some(rest) = l.strip_prefix(".set ") {
        let (name, expr) = rest.split_once(',')?;
        (name.trim(), None, expr.split("/*").next()?.trim())
    } else {
        let rest = l
            .strip_prefix("pub ")
            .or_else(|| l.strip_prefix("pub(crate) "));
        let rest = rest.unwrap_or(l).strip_prefix("const ")?;
        let (name, rest) = rest.split_once(':')?;
        let (ty, expr) = rest.split_once('=')?;
        let expr = expr.trim().strip_suffix(';')?.trim();
        (name.trim(), Some(ty.trim()), expr)
    };
    (!name.is_empty() && is_literal_expr(expr)).then_some((name, ty, expr))
}

/// The keys under which a definition counts: its name if it has a hardware
/// prefix, and its MSR number if it is a single well-known one.
fn hardware_keys(name: &str, ty: Option<&str>, expr: &str) -> Vec<String> {
    let mut keys = Vec::new();
    if HARDWARE_PREFIXES.iter().any(|p| name.starts_with(p)) {
        keys.push(name.to_string());
    }
    let msr_typed = ty.is_none_or(|t| t == "u32");
    if let Some(v) = literal_value(expr).filter(|&v| msr_typed && well_known_msr(v)) {
        keys.push(format!("MSR {v:#x}"));
    }
    keys
}

/// Every key defined more than once, with each definition's `file:line`.
fn duplicate_hardware_constants<'a>(
    files: impl IntoIterator<Item = (String, &'a str)>,
) -> Vec<(String, Vec<String>)> {
    let mut defs: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (path, text) in files {
        let mut prev = "";
        for (n, line) in text.lines().enumerate() {
            // Unit tests at the end of a file are not the tree's definitions.
            if prev == "#[cfg(test)]" && line.starts_with("mod ") {
                break;
            }
            prev = line;
            if let Some((name, ty, expr)) = constant_definition(line) {
                for key in hardware_keys(name, ty, expr) {
                    defs.entry(key)
                        .or_default()
                        .push(format!("{path}:{}", n + 1));
                }
            }
        }
    }
    defs.into_iter().filter(|(_, at)| at.len() > 1).collect()
}

#[test]
fn duplicate_matcher_finds_names_and_msr_numbers() {
    let a = "//! a\nconst IA32_EFER: u32 = 0xc000_0080;\nconst APIC_BASE_EXTD: u64 = 1 << 10;\n\
             const OTHER: u32 = 0x830;\nconst FINE: u32 = x86::msr::IA32_EFER;\n\
             const OFFSET: usize = 0x277;\nconst PAT: u32 = 0x277;\n";
    let b =
        "//! b\npub const MSR_X2APIC_ICR: u32 = 0x830;\n    .set EFER_MSR, 0xc0000080 /* x */\n\
             pub(crate) const APIC_BASE_EXTD: u64 = 0x400;\nconst VECTOR: u32 = 0xff;\n\
             #[cfg(test)]\nmod tests {\n    const IA32_EFER: u32 = 0xc000_0080;\n}\n";
    let found = duplicate_hardware_constants([("a.rs".into(), a), ("b.rs".into(), b)]);
    let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["APIC_BASE_EXTD", "MSR 0x830", "MSR 0xc0000080"]);
    assert_eq!(found[0].1, ["a.rs:3", "b.rs:4"]);
    assert_eq!(found[2].1, ["a.rs:2", "b.rs:3"]);
    assert_eq!(found.len(), 3, "a `usize` 0x277 is no MSR: {found:?}");
    assert_eq!(constant_definition("const X: u64 = FOO | 1;"), None);
    assert_eq!(constant_definition("let x = 0x1b;"), None);
}

#[test]
fn no_hardware_constant_is_defined_twice() {
    let files: Vec<(String, String)> = sources()
        .into_iter()
        .filter(|(p, _)| !p.starts_with("tests") && !p.to_string_lossy().contains("/tests/"))
        .map(|(p, text)| (p.display().to_string(), text))
        .collect();
    let found = duplicate_hardware_constants(files.iter().map(|(p, t)| (p.clone(), t.as_str())));
    let listing: Vec<String> = found
        .iter()
        .map(|(key, at)| format!("{key}: {}", at.join(", ")))
        .collect();
    assert!(
        found.is_empty(),
        "hardware constants defined more than once (use `x86` or `abi::regs`):\n{}",
        listing.join("\n")
    );
}
