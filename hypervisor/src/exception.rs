//! The report printed when a CPU exception hits the hypervisor itself.

use core::fmt;

/// Saved state of an exception, arch-neutral enough to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionReport {
    /// Vector number (0–31).
    pub vector: u8,
    /// Error code (0 for vectors without one).
    pub error_code: u64,
    /// Faulting instruction.
    pub rip: u64,
    /// Stack pointer at the fault.
    pub rsp: u64,
    /// Flags at the fault.
    pub rflags: u64,
    /// CR2 (meaningful for page faults).
    pub cr2: u64,
    /// The core's index, when its per-core state already existed.
    pub cpu: Option<u32>,
}

/// One entry of the exception-fixup table: a hypervisor instruction that
/// may fault on a guest-chosen operand, and where to resume if it does.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixup {
    /// Address of the instruction that may fault.
    pub fault_rip: u64,
    /// Address of its recovery code (which returns an error to the caller).
    pub resume_rip: u64,
}

/// Vectors a fixup recovers from: #UD (e.g. XSETBV without CR4.OSXSAVE)
/// and #GP (a value the CPU refuses). Anything else at a fixup address
/// (a page fault, a machine check) is still fatal.
const RECOVERABLE: [u8; 2] = [6, 13];

/// Where to resume after exception `vector` at `rip`, if `rip` is an
/// instruction of the fixup `table` and the vector is recoverable.
pub fn fixup_target(table: &[Fixup], vector: u8, rip: u64) -> Option<u64> {
    if !RECOVERABLE.contains(&vector) {
        return None;
    }
    table
        .iter()
        .find(|f| f.fault_rip == rip)
        .map(|f| f.resume_rip)
}

/// Mnemonic and name of an exception vector (Intel SDM Vol. 3 Table 6-1).
pub fn vector_name(vector: u8) -> (&'static str, &'static str) {
    match vector {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "bound range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point"),
        20 => ("#VE", "virtualization exception"),
        21 => ("#CP", "control protection"),
        29 => ("#VC", "VMM communication"),
        30 => ("#SX", "security exception"),
        _ => ("#??", "reserved vector"),
    }
}

impl fmt::Display for ExceptionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mnemonic, name) = vector_name(self.vector);
        write!(f, "{mnemonic} ({name}, vector {}) ", self.vector)?;
        match self.cpu {
            Some(cpu) => write!(f, "on cpu {cpu}")?,
            None => write!(f, "on a core in early bring-up")?,
        }
        write!(
            f,
            ": error {:#x} rip {:#018x} rsp {:#018x} rflags {:#x}",
            self.error_code, self.rip, self.rsp, self.rflags
        )?;
        if self.vector == 14 {
            write!(f, " cr2 {:#018x}", self.cr2)?;
            let e = self.error_code;
            let access = if e & 16 != 0 {
                "instruction fetch"
            } else if e & 2 != 0 {
                "write"
            } else {
                "read"
            };
            let cause = if e & 1 != 0 {
                "protection violation"
            } else {
                "page not present"
            };
            write!(f, " ({cause} on {access})")?;
        } else {
            write!(f, " cr2 {:#x}", self.cr2)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn page_fault_report_names_everything() {
        let r = ExceptionReport {
            vector: 14,
            error_code: 2,
            rip: 0x10_2345,
            rsp: 0x20_0000,
            rflags: 0x46,
            cr2: 0xdead_b000,
            cpu: Some(3),
        };
        let s = r.to_string();
        assert!(s.starts_with("#PF (page fault, vector 14) on cpu 3"), "{s}");
        assert!(s.contains("rip 0x0000000000102345"), "{s}");
        assert!(s.contains("cr2 0x00000000deadb000"), "{s}");
        assert!(s.contains("page not present on write"), "{s}");
    }

    #[test]
    fn early_exception_has_no_cpu() {
        let r = ExceptionReport {
            vector: 6,
            error_code: 0,
            rip: 1,
            rsp: 2,
            rflags: 3,
            cr2: 0,
            cpu: None,
        };
        assert!(r
            .to_string()
            .starts_with("#UD (invalid opcode, vector 6) on a core in early bring-up"));
    }

    #[test]
    fn fixups_resume_only_their_instruction_on_gp_or_ud() {
        let table = [
            Fixup {
                fault_rip: 0x10_1000,
                resume_rip: 0x10_1010,
            },
            Fixup {
                fault_rip: 0x10_2000,
                resume_rip: 0x10_2008,
            },
        ];
        assert_eq!(fixup_target(&table, 13, 0x10_1000), Some(0x10_1010));
        assert_eq!(fixup_target(&table, 6, 0x10_2000), Some(0x10_2008));
        assert_eq!(fixup_target(&table, 13, 0x10_1001), None, "other rip");
        assert_eq!(fixup_target(&table, 14, 0x10_1000), None, "page fault");
        assert_eq!(fixup_target(&table, 18, 0x10_1000), None, "machine check");
        assert_eq!(fixup_target(&[], 13, 0x10_1000), None);
    }
}
