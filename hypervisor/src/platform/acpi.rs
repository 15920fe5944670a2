//! The few ACPI tables the hypervisor reads: the RSDP, the RSDT/XSDT, the
//! MADT, to learn which cores exist (their local APIC IDs), and the FADT, to
//! learn which I/O ports the firmware's power management uses (they are
//! never granted to a partition, `docs/layout.md`, "I/O ports").
//!
//! Every table length and entry length is bounds-checked and every checksum
//! verified; a malformed table is an error, never a panic. Reference: ACPI
//! 6.5 §5.2.5 (RSDP), §5.2.7–8 (RSDT/XSDT), §5.2.12 (MADT; entry types 0
//! "Processor Local APIC" and 9 "Processor Local x2APIC"), §5.2.9 (FADT,
//! Table 5.6) and §5.2.3.2 (Generic Address Structure).

use super::boot_info::AcpiRoot;
use super::memory::{PhysError, PhysMemory};
use abi::ports::PortRange;
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
        let chunk = usize::try_from(u64::from(len) - done).map_or(buf.len(), |n| n.min(buf.len()));
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

/// The address of the first table with `signature` the RSDT/XSDT lists.
fn find_table(
    mem: &impl PhysMemory,
    root: AcpiRoot,
    signature: &[u8; 4],
) -> Result<Option<u64>, AcpiError> {
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
            return Ok(Some(addr));
        }
    }
    Ok(None)
}

/// Lists the enabled cores of the MADT, in table order (the first is
/// conventionally the bootstrap core, but callers should not rely on it).
pub fn cpus(mem: &impl PhysMemory, root: AcpiRoot) -> Result<Vec<CpuEntry>, AcpiError> {
    let madt = find_table(mem, root, b"APIC")?.ok_or(AcpiError::NoMadt)?;
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

/// An I/O port block the machine's FADT declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmwarePort {
    /// The ports.
    pub range: PortRange,
    /// Which FADT field declares them (`PM1a_CNT_BLK`, `SMI_CMD`, …).
    pub field: &'static str,
}

/// What the FADT says about the firmware's I/O ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FadtPorts {
    /// The FADT was read: these blocks (possibly none).
    Declared(Vec<FirmwarePort>),
    /// The machine has no FADT (the RSDT/XSDT lists no `FACP`).
    Absent,
    /// The FADT (or the tables leading to it) could not be read or is
    /// malformed: which ports the firmware uses is unknown.
    Unreadable(AcpiError),
}

/// Longest FADT read (ACPI 6.5 defines 276 bytes; later fields are ignored).
const FADT_MAX_LEN: usize = 276;
/// The ACPI 1.0 FADT's length (up to and including `Flags`).
const FADT_V1_LEN: usize = 116;

/// The legacy (32-bit) port blocks of the FADT: field name, offset of the
/// address, offset of its length byte, and the least length the spec
/// allows (used when the length byte is smaller). ACPI 6.5 Table 5.6.
const FADT_BLOCKS: [(&str, usize, usize, u8); 8] = [
    ("PM1a_EVT_BLK", 56, 88, 4),
    ("PM1b_EVT_BLK", 60, 88, 4),
    ("PM1a_CNT_BLK", 64, 89, 2),
    ("PM1b_CNT_BLK", 68, 89, 2),
    ("PM2_CNT_BLK", 72, 90, 1),
    ("PM_TMR_BLK", 76, 91, 4),
    ("GPE0_BLK", 80, 92, 2),
    ("GPE1_BLK", 84, 93, 2),
];

/// The extended (Generic Address Structure) blocks, each paired with the
/// legacy length byte of the same block (or none): `X_PM1a_EVT_BLK` at 148
/// to `X_GPE1_BLK` at 232, `RESET_REG` at 116, and the hardware-reduced
/// `SLEEP_CONTROL_REG`/`SLEEP_STATUS_REG` at 244/256.
const FADT_GAS: [(&str, usize, Option<usize>); 11] = [
    ("RESET_REG", 116, None),
    ("X_PM1a_EVT_BLK", 148, Some(88)),
    ("X_PM1b_EVT_BLK", 160, Some(88)),
    ("X_PM1a_CNT_BLK", 172, Some(89)),
    ("X_PM1b_CNT_BLK", 184, Some(89)),
    ("X_PM2_CNT_BLK", 196, Some(90)),
    ("X_PM_TMR_BLK", 208, Some(91)),
    ("X_GPE0_BLK", 220, Some(92)),
    ("X_GPE1_BLK", 232, Some(93)),
    ("SLEEP_CONTROL_REG", 244, None),
    ("SLEEP_STATUS_REG", 256, None),
];

/// Generic Address Structure: address space ID 1 is system I/O (ACPI 6.5
/// Table 5.1).
const GAS_SYSTEM_IO: u8 = 1;

/// The ports `base..base+len` as a range, clipped to the 16-bit port space;
/// `None` when empty or wholly above it.
fn io_block(base: u64, len: u64) -> Option<PortRange> {
    let first = u16::try_from(base).ok()?;
    let last = base.checked_add(len.checked_sub(1)?)?.min(0xffff);
    Some(PortRange::new(first, u16::try_from(last).ok()?))
}

/// The I/O port blocks a FADT declares, from its bytes (header included;
/// the whole table, or its first 276 bytes (`FADT_MAX_LEN`) when longer): the legacy PM1a/PM1b event and
/// control blocks, PM2 control, PM timer and GPE0/GPE1 blocks, `SMI_CMD`,
/// and — where the table is long enough to have them — their extended forms,
/// `RESET_REG` and the sleep registers when they are in system I/O space.
/// Fields past the table's length (older revisions) are absent; a block
/// with address 0 is not implemented. Lengths are taken generously (the
/// larger of the length byte, the GAS bit width and the spec's minimum), as
/// the result decides what is refused.
///
/// # Errors
/// [`AcpiError::Malformed`] when the bytes are not a FADT (signature,
/// length field, shorter than the ACPI 1.0 table's 116 bytes).
pub fn fadt_ports(table: &[u8]) -> Result<Vec<FirmwarePort>, AcpiError> {
    let u8_at = |at: usize| table.get(at).copied();
    let u32_at = |at: usize| {
        let b = table.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if table.get(..4) != Some(b"FACP".as_slice()) {
        return Err(AcpiError::Malformed("FADT signature"));
    }
    let declared = u32_at(4).and_then(|l| usize::try_from(l).ok());
    if declared.map(|l| l.min(FADT_MAX_LEN)) != Some(table.len()) || table.len() < FADT_V1_LEN {
        return Err(AcpiError::Malformed("FADT length"));
    }
    let mut out = Vec::new();
    let mut add = |field: &'static str, range: Option<PortRange>| {
        if let Some(range) = range {
            out.push(FirmwarePort { range, field });
        }
    };
    if let Some(smi) = u32_at(48).filter(|&a| a != 0) {
        add("SMI_CMD", io_block(u64::from(smi), 1));
    }
    for (field, addr, len, min) in FADT_BLOCKS {
        if let (Some(base), Some(n)) = (u32_at(addr).filter(|&a| a != 0), u8_at(len)) {
            add(field, io_block(u64::from(base), u64::from(n.max(min))));
        }
    }
    for (field, at, legacy_len) in FADT_GAS {
        let Some(gas) = table.get(at..at + 12) else {
            continue;
        };
        let mut address = [0u8; 8];
        address.copy_from_slice(&gas[4..12]);
        let address = u64::from_le_bytes(address);
        if gas[0] != GAS_SYSTEM_IO || address == 0 {
            continue;
        }
        let width_bytes = u64::from(gas[1]).div_ceil(8);
        let legacy = legacy_len.and_then(u8_at).map_or(0, u64::from);
        add(field, io_block(address, width_bytes.max(legacy).max(1)));
    }
    Ok(out)
}

/// Finds the FADT (`FACP`) and lists the I/O ports it declares
/// ([`fadt_ports`]). Never fails: what went wrong is in the answer.
pub fn firmware_ports(mem: &impl PhysMemory, root: AcpiRoot) -> FadtPorts {
    let read = || -> Result<Option<Vec<FirmwarePort>>, AcpiError> {
        let Some(fadt) = find_table(mem, root, b"FACP")? else {
            return Ok(None);
        };
        let len = table_len(mem, fadt, "FADT")?;
        let keep = usize::try_from(len)
            .map_err(|_| AcpiError::Malformed("FADT length"))?
            .min(FADT_MAX_LEN);
        let mut bytes = alloc::vec![0u8; keep];
        mem.read(fadt, &mut bytes)?;
        fadt_ports(&bytes).map(Some)
    };
    match read() {
        Ok(Some(ports)) => FadtPorts::Declared(ports),
        Ok(None) => FadtPorts::Absent,
        Err(e) => FadtPorts::Unreadable(e),
    }
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
        t.extend_from_slice(&u32::try_from(36 + body.len()).expect("small").to_le_bytes());
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

    /// A FADT of `len` bytes (header included) with `fields` written at
    /// their table offsets.
    fn fadt(len: usize, fields: &[(usize, &[u8])]) -> std::vec::Vec<u8> {
        let mut body = std::vec![0u8; len - 36];
        for (at, bytes) in fields {
            body[at - 36..at - 36 + bytes.len()].copy_from_slice(bytes);
        }
        sdt(b"FACP", &body)
    }

    /// A Generic Address Structure (ACPI 6.5 §5.2.3.2).
    fn gas(space: u8, bit_width: u8, address: u64) -> [u8; 12] {
        let mut g = [0u8; 12];
        g[0] = space;
        g[1] = bit_width;
        g[3] = 1; // byte access
        g[4..].copy_from_slice(&address.to_le_bytes());
        g
    }

    fn port(field: &'static str, first: u16, last: u16) -> FirmwarePort {
        FirmwarePort {
            range: PortRange::new(first, last),
            field,
        }
    }

    /// A FADT like QEMU's `pc` machine's (PM base 0x600, GPE0 at 0xAFE0,
    /// SMI_CMD 0xB2, reset through 0xCF9), revision 6 with the extended
    /// blocks: one in I/O space, one in memory space (ignored).
    fn qemu_like_fadt() -> std::vec::Vec<u8> {
        fadt(
            276,
            &[
                (48, &0xb2u32.to_le_bytes()),
                (56, &0x600u32.to_le_bytes()),
                (64, &0x604u32.to_le_bytes()),
                (76, &0x608u32.to_le_bytes()),
                (80, &0xafe0u32.to_le_bytes()),
                (88, &[4, 2, 0, 4, 4, 0]),
                (116, &gas(1, 8, 0xcf9)),
                (148, &gas(1, 32, 0x600)),
                (208, &gas(0, 32, 0xfed0_0000)),
                (244, &gas(1, 8, 0x0ff0)),
            ],
        )
    }

    #[test]
    fn fadt_ports_of_a_qemu_like_table() {
        assert_eq!(
            fadt_ports(&qemu_like_fadt()),
            Ok(std::vec![
                port("SMI_CMD", 0xb2, 0xb2),
                port("PM1a_EVT_BLK", 0x600, 0x603),
                port("PM1a_CNT_BLK", 0x604, 0x605),
                port("PM_TMR_BLK", 0x608, 0x60b),
                port("GPE0_BLK", 0xafe0, 0xafe3),
                port("RESET_REG", 0xcf9, 0xcf9),
                port("X_PM1a_EVT_BLK", 0x600, 0x603),
                port("SLEEP_CONTROL_REG", 0xff0, 0xff0),
            ])
        );
    }

    #[test]
    fn fadt_ports_of_an_acpi_1_table_with_odd_blocks() {
        // 116 bytes: no extended fields. PM1b is absent (0); a PM1 event
        // length below the spec's 4 is taken as 4; GPE1 runs off the port
        // space and is clipped; PM2 above it is ignored.
        let table = fadt(
            116,
            &[
                (56, &0x1800u32.to_le_bytes()),
                (72, &0x1_0000u32.to_le_bytes()),
                (84, &0xfffeu32.to_le_bytes()),
                (88, &[2, 2, 1, 4, 0, 8]),
            ],
        );
        assert_eq!(
            fadt_ports(&table),
            Ok(std::vec![
                port("PM1a_EVT_BLK", 0x1800, 0x1803),
                port("GPE1_BLK", 0xfffe, 0xffff),
            ])
        );
    }

    #[test]
    fn fadt_that_is_not_one_is_an_error() {
        let good = qemu_like_fadt();
        let mut sig = good.clone();
        sig[0] = b'X';
        assert_eq!(
            fadt_ports(&sig),
            Err(AcpiError::Malformed("FADT signature"))
        );
        assert_eq!(
            fadt_ports(&good[..200]),
            Err(AcpiError::Malformed("FADT length")),
            "slice shorter than the length field"
        );
        assert_eq!(
            fadt_ports(&fadt(100, &[])),
            Err(AcpiError::Malformed("FADT length")),
            "shorter than ACPI 1.0's table"
        );
        // A longer table (a later revision) is read up to 276 bytes.
        let mut long = fadt(300, &[(48, &0xb2u32.to_le_bytes())]);
        long.truncate(276);
        assert_eq!(
            fadt_ports(&long),
            Ok(std::vec![port("SMI_CMD", 0xb2, 0xb2)])
        );
    }

    /// RSDP at 0xe0010, RSDT at 0x10000 listing `tables` (address, bytes).
    fn machine_with(tables: &[(u32, std::vec::Vec<u8>)]) -> FakeMemory {
        let mut mem = FakeMemory::new(0, 0x100000);
        let mut rsdp = std::vec::Vec::new();
        rsdp.extend_from_slice(b"RSD PTR ");
        rsdp.push(0);
        rsdp.extend_from_slice(b"FLOTIL");
        rsdp.push(0);
        rsdp.extend_from_slice(&0x10000u32.to_le_bytes());
        fix_checksum(&mut rsdp, 8);
        mem.write(0xe0010, &rsdp);
        let entries: std::vec::Vec<u8> = tables.iter().flat_map(|(a, _)| a.to_le_bytes()).collect();
        mem.write(0x10000, &sdt(b"RSDT", &entries));
        for (addr, bytes) in tables {
            mem.write(u64::from(*addr), bytes);
        }
        mem
    }

    #[test]
    fn firmware_ports_are_read_from_the_listed_fadt() {
        let root = AcpiRoot::RsdpAddress(0xe0010);
        let madt = sdt(b"APIC", &[0; 8]);
        let mem = machine_with(&[(0x11000, madt.clone()), (0x12000, qemu_like_fadt())]);
        match firmware_ports(&mem, root) {
            FadtPorts::Declared(ports) => {
                assert!(
                    ports.contains(&port("PM1a_CNT_BLK", 0x604, 0x605)),
                    "{ports:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        let mem = machine_with(&[(0x11000, madt.clone())]);
        assert_eq!(firmware_ports(&mem, root), FadtPorts::Absent);
        let mut corrupt = qemu_like_fadt();
        corrupt[60] ^= 1;
        let mem = machine_with(&[(0x11000, madt), (0x12000, corrupt)]);
        assert_eq!(
            firmware_ports(&mem, root),
            FadtPorts::Unreadable(AcpiError::BadChecksum("FADT"))
        );
    }

    #[test]
    fn no_rsdp_in_empty_memory() {
        let mem = FakeMemory::new(0, 0x100000);
        assert_eq!(scan_for_rsdp(&mem), None);
    }
}
