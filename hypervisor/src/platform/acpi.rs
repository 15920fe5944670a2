//! The few ACPI tables the hypervisor reads: the RSDP, the RSDT/XSDT, and the
//! MADT, to learn which cores exist (their local APIC IDs).
//!
//! Every table length and entry length is bounds-checked and every checksum
//! verified; a malformed table is an error, never a panic. Reference: ACPI
//! 6.5 §5.2.5 (RSDP), §5.2.7–8 (RSDT/XSDT), §5.2.12 (MADT; entry types 0
//! "Processor Local APIC" and 9 "Processor Local x2APIC").

use super::boot_info::AcpiRoot;
use super::memory::{PhysError, PhysMemory};
use alloc::vec::Vec;

/// Largest table accepted (a sanity bound against garbage lengths).
const MAX_TABLE_LEN: u32 = 1 << 20;
const SDT_HEADER_LEN: u64 = 36;

/// An enabled core as the MADT lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuEntry {
    /// ACPI processor UID.
    pub acpi_uid: u32,
    /// Local APIC ID.
    pub apic_id: u32,
}

/// Why the cores could not be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// No RSDP given by the loader nor found in the BIOS areas.
    NoRsdp,
    /// A table could not be read.
    Unreadable(PhysError),
    /// A table's checksum is wrong.
    BadChecksum(&'static str),
    /// A table is malformed.
    Malformed(&'static str),
    /// The RSDT/XSDT has no MADT ("APIC" table).
    NoMadt,
    /// The MADT lists no enabled core.
    NoCpus,
}

impl From<PhysError> for AcpiError {
    fn from(e: PhysError) -> Self {
        AcpiError::Unreadable(e)
    }
}

impl core::fmt::Display for AcpiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AcpiError::NoRsdp => write!(f, "no ACPI RSDP found"),
            AcpiError::Unreadable(e) => write!(f, "ACPI table unreadable: {e}"),
            AcpiError::BadChecksum(t) => write!(f, "ACPI {t} checksum is wrong"),
            AcpiError::Malformed(t) => write!(f, "malformed ACPI table: {t}"),
            AcpiError::NoMadt => write!(f, "no ACPI MADT (APIC table)"),
            AcpiError::NoCpus => write!(f, "the ACPI MADT lists no enabled core"),
        }
    }
}

fn checksum_ok(mem: &impl PhysMemory, addr: u64, len: u32) -> Result<bool, PhysError> {
    let mut sum = 0u8;
    let mut buf = [0u8; 256];
    let mut done = 0u64;
    while done < u64::from(len) {
        let chunk = (u64::from(len) - done).min(buf.len() as u64) as usize;
        mem.read(addr + done, &mut buf[..chunk])?;
        sum = buf[..chunk].iter().fold(sum, |s, &b| s.wrapping_add(b));
        done += chunk as u64;
    }
    Ok(sum == 0)
}

/// Finds the RSDP by its signature in the BIOS areas (the first KiB of the
/// EBDA and 0xE0000–0xFFFFF), on 16-byte boundaries.
pub fn scan_for_rsdp(mem: &impl PhysMemory) -> Option<u64> {
    let ebda = mem.read_u16(0x40e).ok().map(|seg| u64::from(seg) << 4);
    let areas = [ebda.map(|e| (e, e + 1024)), Some((0xe0000, 0x100000))];
    for (start, end) in areas.into_iter().flatten() {
        let mut addr = start;
        while addr + 20 <= end {
            let mut sig = [0u8; 8];
            if mem.read(addr, &mut sig).is_ok()
                && &sig == b"RSD PTR "
                && checksum_ok(mem, addr, 20) == Ok(true)
            {
                return Some(addr);
            }
            addr += 16;
        }
    }
    None
}

fn root_tables(mem: &impl PhysMemory, root: AcpiRoot) -> Result<(u32, Option<u64>), AcpiError> {
    match root {
        AcpiRoot::Copied { rsdt, xsdt } => Ok((rsdt, xsdt)),
        AcpiRoot::RsdpAddress(addr) => {
            let mut sig = [0u8; 8];
            mem.read(addr, &mut sig)?;
            if &sig != b"RSD PTR " {
                return Err(AcpiError::Malformed("RSDP signature"));
            }
            if !checksum_ok(mem, addr, 20)? {
                return Err(AcpiError::BadChecksum("RSDP"));
            }
            let revision = mem.read_u8(addr + 15)?;
            let rsdt = mem.read_u32(addr + 16)?;
            let xsdt = if revision >= 2 {
                Some(mem.read_u64(addr + 24)?).filter(|&x| x != 0)
            } else {
                None
            };
            Ok((rsdt, xsdt))
        }
    }
}

/// Reads and checks a table header; returns its total length.
fn table_len(mem: &impl PhysMemory, addr: u64, what: &'static str) -> Result<u32, AcpiError> {
    let len = mem.read_u32(addr + 4)?;
    if u64::from(len) < SDT_HEADER_LEN || len > MAX_TABLE_LEN {
        return Err(AcpiError::Malformed(what));
    }
    if !checksum_ok(mem, addr, len)? {
        return Err(AcpiError::BadChecksum(what));
    }
    Ok(len)
}

fn find_table(
    mem: &impl PhysMemory,
    root: AcpiRoot,
    signature: &[u8; 4],
) -> Result<u64, AcpiError> {
    let (rsdt, xsdt) = root_tables(mem, root)?;
    let (table, entry_size, what) = match xsdt {
        Some(x) => (x, 8u64, "XSDT"),
        None => (u64::from(rsdt), 4u64, "RSDT"),
    };
    let len = table_len(mem, table, what)?;
    let entries = (u64::from(len) - SDT_HEADER_LEN) / entry_size;
    for i in 0..entries {
        let at = table + SDT_HEADER_LEN + i * entry_size;
        let addr = if entry_size == 8 {
            mem.read_u64(at)?
        } else {
            u64::from(mem.read_u32(at)?)
        };
        let mut sig = [0u8; 4];
        if mem.read(addr, &mut sig).is_ok() && &sig == signature {
            return Ok(addr);
        }
    }
    Err(AcpiError::NoMadt)
}

/// Lists the enabled cores of the MADT, in table order (the first is
/// conventionally the bootstrap core, but callers should not rely on it).
pub fn cpus(mem: &impl PhysMemory, root: AcpiRoot) -> Result<Vec<CpuEntry>, AcpiError> {
    let madt = find_table(mem, root, b"APIC")?;
    let len = table_len(mem, madt, "MADT")?;
    let end = madt + u64::from(len);
    // Header, then the local APIC address (4) and flags (4).
    let mut entry = madt + SDT_HEADER_LEN + 8;
    let mut cpus = Vec::new();
    while entry + 2 <= end {
        let kind = mem.read_u8(entry)?;
        let entry_len = u64::from(mem.read_u8(entry + 1)?);
        if entry_len < 2 || entry + entry_len > end {
            return Err(AcpiError::Malformed("MADT entry length"));
        }
        match kind {
            0 if entry_len >= 8 => {
                let flags = mem.read_u32(entry + 4)?;
                if flags & 1 != 0 {
                    cpus.push(CpuEntry {
                        acpi_uid: u32::from(mem.read_u8(entry + 2)?),
                        apic_id: u32::from(mem.read_u8(entry + 3)?),
                    });
                }
            }
            9 if entry_len >= 16 => {
                let flags = mem.read_u32(entry + 8)?;
                let apic_id = mem.read_u32(entry + 4)?;
                if flags & 1 != 0 && !cpus.iter().any(|c| c.apic_id == apic_id) {
                    cpus.push(CpuEntry {
                        acpi_uid: mem.read_u32(entry + 12)?,
                        apic_id,
                    });
                }
            }
            0 | 9 => return Err(AcpiError::Malformed("MADT processor entry too short")),
            _ => {}
        }
        entry += entry_len;
    }
    if cpus.is_empty() {
        return Err(AcpiError::NoCpus);
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::memory::FakeMemory;

    fn fix_checksum(bytes: &mut [u8], at: usize) {
        bytes[at] = 0;
        let sum = bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        bytes[at] = 0u8.wrapping_sub(sum);
    }

    fn sdt(signature: &[u8; 4], body: &[u8]) -> std::vec::Vec<u8> {
        let mut t = std::vec::Vec::new();
        t.extend_from_slice(signature);
        t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
        t.push(1); // revision
        t.push(0); // checksum
        t.extend_from_slice(b"FLOTIL");
        t.extend_from_slice(b"TESTTABL");
        t.extend_from_slice(&[0; 12]);
        t.extend_from_slice(body);
        fix_checksum(&mut t, 9);
        t
    }

    /// RSDP at 0xe0010, RSDT at 0x10000, MADT at 0x11000 with the given entries.
    fn machine(madt_entries: &[u8]) -> FakeMemory {
        let mut mem = FakeMemory::new(0, 0x100000);
        let mut rsdp = std::vec::Vec::new();
        rsdp.extend_from_slice(b"RSD PTR ");
        rsdp.push(0);
        rsdp.extend_from_slice(b"FLOTIL");
        rsdp.push(0); // ACPI 1.0
        rsdp.extend_from_slice(&0x10000u32.to_le_bytes());
        fix_checksum(&mut rsdp, 8);
        mem.write(0xe0010, &rsdp);
        mem.write(0x10000, &sdt(b"RSDT", &0x11000u32.to_le_bytes()));
        let mut body = std::vec::Vec::new();
        body.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(madt_entries);
        mem.write(0x11000, &sdt(b"APIC", &body));
        mem
    }

    fn lapic(uid: u8, id: u8, enabled: bool) -> [u8; 8] {
        [0, 8, uid, id, u8::from(enabled), 0, 0, 0]
    }

    #[test]
    fn finds_enabled_cores_via_scanned_rsdp() {
        let mut entries = std::vec::Vec::new();
        entries.extend_from_slice(&lapic(0, 0, true));
        entries.extend_from_slice(&lapic(1, 2, true));
        entries.extend_from_slice(&[1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0]); // I/O APIC
        entries.extend_from_slice(&lapic(2, 4, false));
        let mut x2 = std::vec![9u8, 16, 0, 0];
        x2.extend_from_slice(&300u32.to_le_bytes());
        x2.extend_from_slice(&1u32.to_le_bytes());
        x2.extend_from_slice(&7u32.to_le_bytes());
        entries.extend_from_slice(&x2);
        let mem = machine(&entries);
        let rsdp = scan_for_rsdp(&mem).expect("RSDP in the BIOS area");
        assert_eq!(rsdp, 0xe0010);
        let cpus = cpus(&mem, AcpiRoot::RsdpAddress(rsdp)).expect("valid MADT");
        assert_eq!(
            cpus,
            std::vec![
                CpuEntry {
                    acpi_uid: 0,
                    apic_id: 0
                },
                CpuEntry {
                    acpi_uid: 1,
                    apic_id: 2
                },
                CpuEntry {
                    acpi_uid: 7,
                    apic_id: 300
                },
            ]
        );
    }

    #[test]
    fn corrupted_tables_are_errors() {
        let mut entries = std::vec::Vec::new();
        entries.extend_from_slice(&lapic(0, 0, true));
        let good = machine(&entries);
        let root = AcpiRoot::RsdpAddress(0xe0010);
        assert!(cpus(&good, root).is_ok());

        let mut bad_sum = machine(&entries);
        bad_sum.bytes[0x11000 + 40] ^= 0xff;
        assert_eq!(cpus(&bad_sum, root), Err(AcpiError::BadChecksum("MADT")));

        // An entry whose length runs past the table.
        let mut overrun = lapic(0, 0, true);
        overrun[1] = 200;
        assert_eq!(
            cpus(&machine(&overrun), root),
            Err(AcpiError::Malformed("MADT entry length"))
        );
        // Zero-length entry: must not loop forever.
        let mut zero = lapic(0, 0, true);
        zero[1] = 0;
        assert_eq!(
            cpus(&machine(&zero), root),
            Err(AcpiError::Malformed("MADT entry length"))
        );
        // No enabled core.
        assert_eq!(
            cpus(&machine(&lapic(0, 0, false)), root),
            Err(AcpiError::NoCpus)
        );
        // Pointer into nowhere.
        assert!(matches!(
            cpus(
                &good,
                AcpiRoot::Copied {
                    rsdt: 0x7fff_0000,
                    xsdt: None
                }
            ),
            Err(AcpiError::Unreadable(_))
        ));
    }

    #[test]
    fn no_rsdp_in_empty_memory() {
        let mem = FakeMemory::new(0, 0x100000);
        assert_eq!(scan_for_rsdp(&mem), None);
    }
}
