//! The ACPI tables of a stock-kernel partition (`compat = "linux"`,
//! `docs/linux.md`): their byte layouts, written once for the host tools
//! that build them (`tools::acpi`) and the hypervisor that fixes up the one
//! value only known at boot, the core's x2APIC ID ([`set_x2apic_id`]).
//!
//! Layouts follow ACPI 6.5: §5.2.5.3 RSDP, §5.2.6 the system description
//! table header, §5.2.8 XSDT, §5.2.9 FADT (Table 5.9), §5.2.12 MADT and
//! §5.2.12.12 the Processor Local x2APIC structure, §5.2.3.2 the Generic
//! Address Structure. Every multi-byte field is little-endian and every
//! struct `Unaligned`, so any byte offset can be viewed.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// RSDP signature (`"RSD PTR "`).
pub const RSDP_SIGNATURE: [u8; 8] = *b"RSD PTR ";
/// XSDT signature.
pub const XSDT_SIGNATURE: [u8; 4] = *b"XSDT";
/// FADT signature.
pub const FADT_SIGNATURE: [u8; 4] = *b"FACP";
/// DSDT signature.
pub const DSDT_SIGNATURE: [u8; 4] = *b"DSDT";
/// MADT signature.
pub const MADT_SIGNATURE: [u8; 4] = *b"APIC";
/// MADT structure type of a Processor Local x2APIC (§5.2.12.12).
pub const MADT_X2APIC: u8 = 9;
/// Local APIC / x2APIC flag: the processor is enabled.
pub const MADT_ENABLED: u32 = 1;
/// GAS address space: system I/O (Table 5.1).
pub const GAS_SYSTEM_IO: u8 = 1;
/// GAS access size: byte.
pub const GAS_ACCESS_BYTE: u8 = 1;
/// FADT flag: the reset register is supported (`RESET_REG_SUP`).
pub const FADT_RESET_REG_SUP: u32 = 1 << 10;
/// FADT flag: x2APIC physical destination mode (`FORCE_APIC_PHYSICAL_DESTINATION_MODE`).
pub const FADT_FORCE_APIC_PHYSICAL: u32 = 1 << 19;
/// FADT flag: hardware-reduced ACPI (`HW_REDUCED_ACPI`): no PM1 blocks,
/// no SCI, no GPEs; sleep through the sleep control register.
pub const FADT_HW_REDUCED_ACPI: u32 = 1 << 20;
/// `IAPC_BOOT_ARCH` (Table 5.11): VGA is not present.
pub const BOOT_ARCH_NO_VGA: u16 = 1 << 2;
/// `IAPC_BOOT_ARCH`: MSI must not be enabled.
pub const BOOT_ARCH_NO_MSI: u16 = 1 << 3;
/// The FADT revision written (ACPI 6.x) and its minor version (6.5).
pub const FADT_REVISION: u8 = 6;
/// The FADT minor version written.
pub const FADT_MINOR_REVISION: u8 = 5;

/// The system description table header (36 bytes, §5.2.6).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct SdtHeader {
    /// Table signature.
    pub signature: [u8; 4],
    /// Bytes of the table, header included.
    pub length: U32,
    /// Table revision.
    pub revision: u8,
    /// The whole table sums to zero (mod 256).
    pub checksum: u8,
    /// OEM ID.
    pub oem_id: [u8; 6],
    /// OEM table ID.
    pub oem_table_id: [u8; 8],
    /// OEM revision.
    pub oem_revision: U32,
    /// Creator ID.
    pub creator_id: [u8; 4],
    /// Creator revision.
    pub creator_revision: U32,
}

/// The Root System Description Pointer, ACPI 2.0+ form (36 bytes, §5.2.5.3).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Rsdp {
    /// [`RSDP_SIGNATURE`].
    pub signature: [u8; 8],
    /// The first 20 bytes sum to zero.
    pub checksum: u8,
    /// OEM ID.
    pub oem_id: [u8; 6],
    /// 2 (ACPI 2.0 and later: the XSDT is used).
    pub revision: u8,
    /// Physical address of the RSDT (0: none, the XSDT serves).
    pub rsdt_address: U32,
    /// Bytes of this structure (36).
    pub length: U32,
    /// Physical address of the XSDT.
    pub xsdt_address: U64,
    /// All 36 bytes sum to zero.
    pub extended_checksum: u8,
    /// Zero.
    pub reserved: [u8; 3],
}

/// A Generic Address Structure (12 bytes, §5.2.3.2).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct Gas {
    /// Address space ([`GAS_SYSTEM_IO`]).
    pub space_id: u8,
    /// Register width in bits.
    pub bit_width: u8,
    /// Register offset in bits.
    pub bit_offset: u8,
    /// Access size ([`GAS_ACCESS_BYTE`], ...).
    pub access_size: u8,
    /// The register's address (an I/O port here).
    pub address: U64,
}

impl Gas {
    /// A register of `bits` bits at I/O port `port`, accessed `access` wide.
    #[must_use]
    pub fn io(port: u16, bits: u8, access: u8) -> Self {
        Self {
            space_id: GAS_SYSTEM_IO,
            bit_width: bits,
            bit_offset: 0,
            access_size: access,
            address: U64::new(u64::from(port)),
        }
    }
}

/// The Fixed ACPI Description Table, revision 6 (276 bytes, Table 5.9).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Fadt {
    /// Header, signature [`FADT_SIGNATURE`].
    pub header: SdtHeader,
    /// 32-bit address of the FACS (0: none; hardware-reduced needs none).
    pub firmware_ctrl: U32,
    /// 32-bit address of the DSDT.
    pub dsdt: U32,
    /// Reserved (ACPI 1.0 `INT_MODEL`).
    pub reserved0: u8,
    /// Preferred power-management profile (0: unspecified).
    pub preferred_pm_profile: u8,
    /// SCI interrupt (none when hardware-reduced).
    pub sci_int: U16,
    /// `SMI_CMD` port (0: none).
    pub smi_cmd: U32,
    /// `ACPI_ENABLE`, `ACPI_DISABLE`, `S4BIOS_REQ`, `PSTATE_CNT`.
    pub smi_values: [u8; 4],
    /// PM1a/PM1b event, PM1a/PM1b control, PM2 control blocks (none).
    pub pm_blocks: [U32; 5],
    /// Legacy 32-bit PM timer port (none: 0).
    pub pm_tmr_blk: U32,
    /// GPE0/GPE1 blocks (none).
    pub gpe_blocks: [U32; 2],
    /// `PM1_EVT_LEN`, `PM1_CNT_LEN`, `PM2_CNT_LEN`.
    pub pm_lens: [u8; 3],
    /// `PM_TMR_LEN` (0: no PM timer).
    pub pm_tmr_len: u8,
    /// `GPE0_BLK_LEN`, `GPE1_BLK_LEN`, `GPE1_BASE`, `CST_CNT`.
    pub gpe_lens: [u8; 4],
    /// `P_LVL2_LAT`, `P_LVL3_LAT`, `FLUSH_SIZE`, `FLUSH_STRIDE`.
    pub legacy_latencies: [U16; 4],
    /// `DUTY_OFFSET`, `DUTY_WIDTH`, `DAY_ALRM`, `MON_ALRM`, `CENTURY`.
    pub rtc_fields: [u8; 5],
    /// `IAPC_BOOT_ARCH` flags.
    pub iapc_boot_arch: U16,
    /// Reserved.
    pub reserved1: u8,
    /// Fixed feature flags (Table 5.10).
    pub flags: U32,
    /// The reset register.
    pub reset_reg: Gas,
    /// The value written to the reset register to reset.
    pub reset_value: u8,
    /// `ARM_BOOT_ARCH`.
    pub arm_boot_arch: U16,
    /// FADT minor version.
    pub minor_version: u8,
    /// 64-bit address of the FACS.
    pub x_firmware_ctrl: U64,
    /// 64-bit address of the DSDT.
    pub x_dsdt: U64,
    /// `X_PM1a_EVT_BLK` .. `X_PM2_CNT_BLK` (none).
    pub x_pm_blocks: [Gas; 5],
    /// `X_PM_TMR_BLK` (none).
    pub x_pm_tmr_blk: Gas,
    /// `X_GPE0_BLK`, `X_GPE1_BLK` (none).
    pub x_gpe_blocks: [Gas; 2],
    /// `SLEEP_CONTROL_REG` (hardware-reduced).
    pub sleep_control_reg: Gas,
    /// `SLEEP_STATUS_REG` (hardware-reduced).
    pub sleep_status_reg: Gas,
    /// Hypervisor vendor identity.
    pub hypervisor_vendor: U64,
}

/// The MADT's fixed part after its header (§5.2.12, Table 5.43).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct MadtHeader {
    /// Header, signature [`MADT_SIGNATURE`].
    pub header: SdtHeader,
    /// Physical address of the local APIC (the xAPIC page).
    pub local_apic_address: U32,
    /// Flags: 0 (`PCAT_COMPAT` clear: no 8259 pair to disable).
    pub flags: U32,
}

/// A Processor Local x2APIC structure (16 bytes, §5.2.12.12).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct MadtX2Apic {
    /// [`MADT_X2APIC`].
    pub kind: u8,
    /// 16.
    pub length: u8,
    /// Zero.
    pub reserved: U16,
    /// The processor's x2APIC ID.
    pub x2apic_id: U32,
    /// [`MADT_ENABLED`].
    pub flags: U32,
    /// ACPI processor UID.
    pub uid: U32,
}

const _: () = {
    assert!(core::mem::size_of::<SdtHeader>() == 36);
    assert!(core::mem::size_of::<Rsdp>() == 36);
    assert!(core::mem::size_of::<Gas>() == 12);
    assert!(core::mem::size_of::<Fadt>() == 276);
    assert!(core::mem::offset_of!(Fadt, pm_tmr_blk) == 76);
    assert!(core::mem::offset_of!(Fadt, iapc_boot_arch) == 109);
    assert!(core::mem::offset_of!(Fadt, flags) == 112);
    assert!(core::mem::offset_of!(Fadt, reset_reg) == 116);
    assert!(core::mem::offset_of!(Fadt, x_dsdt) == 140);
    assert!(core::mem::offset_of!(Fadt, x_pm_tmr_blk) == 208);
    assert!(core::mem::offset_of!(Fadt, sleep_control_reg) == 244);
    assert!(core::mem::offset_of!(Fadt, hypervisor_vendor) == 268);
    assert!(core::mem::size_of::<MadtHeader>() == 44);
    assert!(core::mem::size_of::<MadtX2Apic>() == 16);
};

/// The byte that makes `bytes` sum to zero when stored in a checksum
/// field that is zero in `bytes`.
#[must_use]
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

/// Why [`set_x2apic_id`] could not patch a table set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchError {
    /// What was not where it must be (the RSDP, the XSDT, the MADT, its
    /// x2APIC structure).
    Malformed(&'static str),
}

impl core::fmt::Display for PatchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PatchError::Malformed(what) => write!(f, "ACPI tables malformed: {what}"),
        }
    }
}

/// The table at guest-physical `gpa` inside `tables` (which sits at `base`):
/// its offset and length, checked to lie inside.
fn table_at(tables: &[u8], base: u64, gpa: u64) -> Option<(usize, usize)> {
    let offset = usize::try_from(gpa.checked_sub(base)?).ok()?;
    let (header, _) = SdtHeader::ref_from_prefix(tables.get(offset..)?).ok()?;
    let len = usize::try_from(header.length.get()).ok()?;
    (len >= core::mem::size_of::<SdtHeader>() && offset.checked_add(len)? <= tables.len())
        .then_some((offset, len))
}

/// Writes `apic_id` into the first x2APIC structure of the MADT of
/// `tables` (placed at guest-physical `base`: the RSDP first, as the host
/// tools build them) and fixes the MADT's checksum. The tools write 0
/// there; only the hypervisor knows the core the partition runs on.
///
/// # Errors
/// A table set that is not laid out that way. Nothing is written then.
pub fn set_x2apic_id(tables: &mut [u8], base: u64, apic_id: u32) -> Result<(), PatchError> {
    let bad = PatchError::Malformed;
    let (rsdp, _) = Rsdp::ref_from_prefix(tables).map_err(|_| bad("no RSDP"))?;
    if rsdp.signature != RSDP_SIGNATURE {
        return Err(bad("no RSDP signature"));
    }
    let (xsdt, xsdt_len) =
        table_at(tables, base, rsdp.xsdt_address.get()).ok_or(bad("XSDT out of bounds"))?;
    let entries = tables
        .get(xsdt + core::mem::size_of::<SdtHeader>()..xsdt + xsdt_len)
        .ok_or(bad("XSDT out of bounds"))?;
    let madt = entries
        .chunks_exact(8)
        .filter_map(|e| {
            let gpa = u64::from_le_bytes(e.try_into().ok()?);
            let (at, len) = table_at(tables, base, gpa)?;
            (tables.get(at..at + 4) == Some(&MADT_SIGNATURE[..])).then_some((at, len))
        })
        .next();
    let (madt, madt_len) = madt.ok_or(bad("no MADT in the XSDT"))?;
    let mut at = madt + core::mem::size_of::<MadtHeader>();
    let end = madt + madt_len;
    while at + 2 <= end {
        let (kind, len) = (tables[at], usize::from(tables[at + 1]));
        if len < 2 || at + len > end {
            return Err(bad("MADT structure out of bounds"));
        }
        if kind == MADT_X2APIC && len == core::mem::size_of::<MadtX2Apic>() {
            let entry = MadtX2Apic::mut_from_bytes(&mut tables[at..at + len])
                .map_err(|_| bad("MADT x2APIC structure"))?;
            entry.x2apic_id = U32::new(apic_id);
            let table = &mut tables[madt..end];
            table[9] = 0;
            table[9] = checksum(table);
            return Ok(());
        }
        at += len;
    }
    Err(bad("no x2APIC structure in the MADT"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn header(signature: [u8; 4], length: usize) -> SdtHeader {
        SdtHeader {
            signature,
            length: U32::new(u32::try_from(length).unwrap()),
            revision: 1,
            checksum: 0,
            oem_id: *b"FLOTIL",
            oem_table_id: *b"TESTTEST",
            oem_revision: U32::new(1),
            creator_id: *b"FLOT",
            creator_revision: U32::new(1),
        }
    }

    /// RSDP at 0, XSDT at 40 listing a dummy table at 96 and the MADT at 144.
    fn tables(base: u64) -> Vec<u8> {
        let mut t = alloc::vec![0u8; 144];
        let rsdp = Rsdp {
            signature: RSDP_SIGNATURE,
            checksum: 0,
            oem_id: *b"FLOTIL",
            revision: 2,
            rsdt_address: U32::new(0),
            length: U32::new(36),
            xsdt_address: U64::new(base + 40),
            extended_checksum: 0,
            reserved: [0; 3],
        };
        t[..36].copy_from_slice(rsdp.as_bytes());
        t[40..76].copy_from_slice(header(XSDT_SIGNATURE, 52).as_bytes());
        t[76..84].copy_from_slice(&(base + 96).to_le_bytes());
        t[84..92].copy_from_slice(&(base + 144).to_le_bytes());
        // The dummy table at 96 must not be taken for the MADT.
        t[96..132].copy_from_slice(header(*b"DUMY", 36).as_bytes());
        let madt = MadtHeader {
            header: header(MADT_SIGNATURE, 44 + 8 + 16),
            local_apic_address: U32::new(0xfee0_0000),
            flags: U32::new(0),
        };
        t.extend_from_slice(madt.as_bytes());
        // A structure of another type first (a local APIC NMI, 6 bytes)
        // and two padding bytes as a 2-byte structure.
        t.extend_from_slice(&[4, 6, 0xff, 0, 0, 1, 0x7f, 2]);
        let x2apic = MadtX2Apic {
            kind: MADT_X2APIC,
            length: 16,
            reserved: U16::new(0),
            x2apic_id: U32::new(0),
            flags: U32::new(MADT_ENABLED),
            uid: U32::new(0),
        };
        t.extend_from_slice(x2apic.as_bytes());
        let sum = checksum(&t[144..]);
        t[144 + 9] = sum;
        t
    }

    #[test]
    fn the_x2apic_id_is_written_and_the_checksum_fixed() {
        let base = 0xe_0000;
        let mut t = tables(base);
        set_x2apic_id(&mut t, base, 0x1234_5678).expect("patched");
        let entry = MadtX2Apic::read_from_bytes(&t[144 + 52..]).expect("entry");
        assert_eq!(entry.x2apic_id.get(), 0x1234_5678);
        assert_eq!(t[144..].iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
    }

    #[test]
    fn malformed_tables_are_refused_untouched() {
        let base = 0xe_0000;
        let good = tables(base);
        // Placed elsewhere: the XSDT address points outside.
        let mut t = good.clone();
        assert!(set_x2apic_id(&mut t, base + 0x1000, 1).is_err());
        assert_eq!(t, good);
        // No RSDP signature; the MADT's length past the end; an x2APIC
        // structure cut short.
        let mut t = good.clone();
        t[0] = b'X';
        assert!(set_x2apic_id(&mut t, base, 1).is_err());
        let mut t = good.clone();
        t[148..152].copy_from_slice(&1000u32.to_le_bytes());
        assert!(set_x2apic_id(&mut t, base, 1).is_err());
        // The XSDT's entry for the MADT pointing at the dummy.
        let mut t = good.clone();
        t[84..92].copy_from_slice(&(base + 96).to_le_bytes());
        assert!(set_x2apic_id(&mut t, base, 1).is_err());
        let mut t = good.clone();
        t[144 + 4..144 + 8].copy_from_slice(&(44u32 + 8 + 15).to_le_bytes());
        assert!(set_x2apic_id(&mut t, base, 1).is_err());
        // Every truncation and byte flip: an answer, never a panic.
        for cut in 0..good.len() {
            let mut t = good[..cut].to_vec();
            let _ = set_x2apic_id(&mut t, base, 1);
        }
        for at in 0..good.len() {
            let mut t = good.clone();
            t[at] ^= 0xa5;
            let _ = set_x2apic_id(&mut t, base, 1);
        }
    }
}
