//! Independent oracles: what the manuals say a value must be before the hypervisor may hand it to
//! the hardware, written from the Intel SDM and AMD APM rather than from the hypervisor's own
//! checks, so a hole in those checks shows up as a disagreement.

/// XCR0 state components (Intel SDM Vol. 3A §2.6, Vol. 1 §13.1).
pub mod xcr0 {
    /// x87 state.
    pub const X87: u64 = 1 << 0;
    /// SSE state.
    pub const SSE: u64 = 1 << 1;
    /// AVX state (upper halves of YMM0–15).
    pub const AVX: u64 = 1 << 2;
    /// MPX bound registers.
    pub const BNDREGS: u64 = 1 << 3;
    /// MPX configuration and status.
    pub const BNDCSR: u64 = 1 << 4;
    /// AVX-512 opmask, ZMM_Hi256 and Hi16_ZMM state (bits 5–7).
    pub const AVX512: u64 = 0b111 << 5;
    /// Protection-key rights (PKRU).
    pub const PKRU: u64 = 1 << 9;
    /// AMX tile configuration.
    pub const TILECFG: u64 = 1 << 17;
    /// AMX tile data.
    pub const TILEDATA: u64 = 1 << 18;
}

/// Whether XSETBV may load `value` into XCR0 on a processor whose CPUID.(EAX=0DH,ECX=0)
/// EDX:EAX is `supported`: the conditions under which XSETBV raises #GP (Intel SDM Vol. 3A §2.6
/// and the XSETBV page of Vol. 2; Vol. 1 §13.3): a bit the processor does not support, x87 clear,
/// AVX without SSE, AVX-512 without AVX or not all three of its components, one MPX component
/// without the other, one AMX tile component without the other.
pub fn xcr0_valid(value: u64, supported: u64) -> bool {
    use xcr0::*;
    let all = |m: u64| value & m == m;
    let any = |m: u64| value & m != 0;
    value & !supported == 0
        && all(X87)
        && (!any(AVX) || all(SSE))
        && (!any(AVX512) || (all(AVX512) && all(AVX)))
        && (any(BNDREGS) == any(BNDCSR))
        && (any(TILECFG) == any(TILEDATA))
}

/// The local vector table entries, by x2APIC MSR (Intel SDM Vol. 3A §11.5.1, Figure 11-8;
/// x2APIC MSR numbers in Table 11-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lvt {
    /// LVT CMCI (0x82F).
    Cmci,
    /// LVT timer (0x832).
    Timer,
    /// LVT thermal sensor (0x833).
    Thermal,
    /// LVT performance monitoring counters (0x834).
    Perf,
    /// LVT LINT0 (0x835).
    Lint0,
    /// LVT LINT1 (0x836).
    Lint1,
    /// LVT error (0x837).
    Error,
}

impl Lvt {
    /// The entry behind x2APIC MSR `msr`, if it is one.
    pub fn of_msr(msr: u32) -> Option<Lvt> {
        Some(match msr {
            0x82f => Lvt::Cmci,
            0x832 => Lvt::Timer,
            0x833 => Lvt::Thermal,
            0x834 => Lvt::Perf,
            0x835 => Lvt::Lint0,
            0x836 => Lvt::Lint1,
            0x837 => Lvt::Error,
            _ => return None,
        })
    }
}

/// Whether `value` may be written to LVT entry `lvt` by the hypervisor on the guest's behalf:
/// no bit outside the entry's defined fields (in x2APIC mode a WRMSR with a reserved bit set
/// raises #GP, SDM Vol. 3A §11.12.1.3; bits 63:32 are all reserved), and it can raise nothing but
/// a fixed interrupt on the partition's own core: masked, or delivery mode Fixed (000b) — SMI,
/// NMI, INIT and ExtINT reach past the partition. A timer entry's mode is one-shot or periodic,
/// or TSC-deadline when the processor has it (CPUID.01H:ECX[24]); 11b is reserved.
pub fn lvt_write_safe(lvt: Lvt, value: u64, tsc_deadline: bool) -> bool {
    const VECTOR: u64 = 0xff;
    const MODE: u64 = 0b111 << 8;
    const STATUS: u64 = 1 << 12; // delivery status (read-only)
    const POLARITY: u64 = 1 << 13;
    const REMOTE_IRR: u64 = 1 << 14; // read-only
    const TRIGGER: u64 = 1 << 15;
    const MASK: u64 = 1 << 16;
    const TIMER_MODE: u64 = 0b11 << 17;
    let defined = match lvt {
        Lvt::Timer => VECTOR | STATUS | MASK | TIMER_MODE,
        Lvt::Error => VECTOR | STATUS | MASK,
        Lvt::Cmci | Lvt::Thermal | Lvt::Perf => VECTOR | MODE | STATUS | MASK,
        Lvt::Lint0 | Lvt::Lint1 => VECTOR | MODE | STATUS | POLARITY | REMOTE_IRR | TRIGGER | MASK,
    };
    let timer_mode_ok = match (value & TIMER_MODE) >> 17 {
        0b00 | 0b01 => true,
        0b10 => tsc_deadline,
        _ => false,
    };
    value & !defined == 0 && (value & MASK != 0 || value & MODE == 0) && timer_mode_ok
}

/// Whether `written`, the value the hypervisor wrote to an LVT entry, is the guest's `guest`: the
/// same, or the same with the read-only delivery-status and remote-IRR bits (12, 14) cleared —
/// nothing the guest asked for is changed silently.
pub fn lvt_written_is_guests(guest: u64, written: u64) -> bool {
    const READ_ONLY: u64 = (1 << 12) | (1 << 14);
    written & !READ_ONLY == guest & !READ_ONLY && written & READ_ONLY & !guest == 0
}

/// Whether every entry of a PAT value is a defined memory type: UC (0), WC (1), WT (4), WP (5),
/// WB (6), UC- (7); 2, 3 and 8–255 are reserved and WRMSR raises #GP (Intel SDM Vol. 3A
/// §13.12.2, Table 13-10).
pub fn pat_valid(value: u64) -> bool {
    value
        .to_le_bytes()
        .iter()
        .all(|t| matches!(t, 0 | 1 | 4 | 5 | 6 | 7))
}

/// EFER bits a guest may own: SCE (0), LME (8), LMA (10, written values are ignored by the
/// processor) and NXE (11) (AMD APM Vol. 2 §3.1.7; Intel SDM Vol. 3A §2.2.1). SVME (12) would
/// hand the guest the virtualization extensions; the rest is reserved or not offered.
pub const EFER_GUEST: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);

/// The destination and vector of an x2APIC ICR value if it requests a plain fixed IPI: delivery
/// mode Fixed (bits 10:8 = 000b), physical destination (bit 11 clear), no shorthand (bits 19:18 =
/// 00b); the destination is bits 63:32 (Intel SDM Vol. 3A §11.6.1 and §11.12.9).
pub fn icr_fixed_physical(icr: u64) -> Option<(u32, u8)> {
    let fixed = icr & (0b111 << 8) == 0;
    let physical = icr & (1 << 11) == 0;
    let no_shorthand = icr & (0b11 << 18) == 0;
    (fixed && physical && no_shorthand).then_some(((icr >> 32) as u32, (icr & 0xff) as u8))
}

/// Whether `c` is a control character (Unicode category Cc: C0, DEL, C1); the console takes
/// none but the tab, which cannot start a line.
pub fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Whether a console line a partition got printed is harmless on the hypervisor's serial
/// console: at most `max` bytes and no control character but the tab (no newline to start a line
/// the hypervisor did not prefix, no escape sequence to rewrite earlier ones).
pub fn console_line_ok(line: &str, max: u64) -> bool {
    line.len() as u64 <= max && !line.chars().any(|c| is_control(c) && c != '\t')
}

/// Whether a kept result text has the documented shape (`docs/hypercalls.md`): at most `max`
/// bytes of `key=value` words separated by spaces, keys of `[a-z0-9_-]`, values of printable
/// ASCII without quotes or backslashes.
pub fn result_text_ok(text: &str, max: u64) -> bool {
    text.len() as u64 <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        && text
            .split_ascii_whitespace()
            .all(|word| match word.split_once('=') {
                Some((key, value)) => {
                    !key.is_empty()
                        && key
                            .bytes()
                            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
                }
                None => false,
            })
}

/// Whether a timer LVT value selects periodic mode (bits 18:17 = 01; Intel
/// SDM Vol. 3A §11.5.1, Figure 11-8), whatever its mask.
pub fn timer_periodic(lvt: u32) -> bool {
    (lvt >> 17) & 0b11 == 0b01
}

/// The divisor a divide-configuration value selects (bits 3, 1, 0; Intel
/// SDM Vol. 3A §11.5.4, Figure 11-10), or `None` with reserved bits set.
pub fn timer_divide(config: u32) -> Option<u64> {
    if config & !0b1011 != 0 {
        return None;
    }
    let code = ((config >> 1) & 0b100) | (config & 0b11);
    Some(if code == 0b111 { 1 } else { 2 << code })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracles_follow_the_manuals() {
        use xcr0::*;
        let skx = X87 | SSE | AVX | BNDREGS | BNDCSR | AVX512 | PKRU;
        assert!(xcr0_valid(X87 | SSE | AVX | AVX512, skx));
        assert!(!xcr0_valid(X87 | SSE | AVX | (1 << 5), skx), "opmask alone");
        assert!(!xcr0_valid(X87 | SSE | AVX512, skx), "AVX-512 without AVX");
        assert!(!xcr0_valid(X87 | BNDREGS, skx), "MPX split");
        assert!(
            !xcr0_valid(X87 | TILECFG, X87 | TILECFG | TILEDATA),
            "AMX split"
        );
        assert!(!xcr0_valid(SSE, skx), "x87 clear");
        assert!(!xcr0_valid(X87 | SSE | AVX, X87 | SSE), "unsupported AVX");
        assert!(lvt_write_safe(Lvt::Lint0, 0x1_0700, false), "masked ExtINT");
        assert!(!lvt_write_safe(Lvt::Lint0, 0x0700, false), "ExtINT");
        assert!(
            !lvt_write_safe(Lvt::Timer, 0x0200, false),
            "delivery mode on the timer"
        );
        assert!(
            !lvt_write_safe(Lvt::Timer, 0x4_0030, false),
            "TSC-deadline unsupported"
        );
        assert!(lvt_write_safe(Lvt::Timer, 0x4_0030, true));
        assert!(
            !lvt_write_safe(Lvt::Thermal, 0x1_0000_0030, false),
            "bit 32"
        );
        assert!(
            !lvt_write_safe(Lvt::Error, 0x2030, false),
            "polarity on the error LVT"
        );
        assert_eq!(icr_fixed_physical((7 << 32) | 0x41), Some((7, 0x41)));
        assert_eq!(icr_fixed_physical(0x4500), None, "INIT");
        assert!(console_line_ok("a\tb", 256) && !console_line_ok("a\u{85}b", 256));
        assert!(result_text_ok("a=1 b=x", 512) && !result_text_ok("a=1\u{1b}", 512));
    }
}
