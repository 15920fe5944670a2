//! The ACPI tables of a stock-kernel partition (`compat = "linux"`,
//! `docs/linux.md`), built on the host and carried in the boot bundle; the
//! hypervisor copies them to [`ACPI_TABLES_GPA`], writes the core's x2APIC
//! ID into the MADT (`abi::acpi::set_x2apic_id`) and points
//! `hvm_start_info.rsdp_paddr` at them.
//!
//! They describe exactly the partition's virtual platform (`abi::compat`):
//!
//! - **RSDP** (revision 2) → **XSDT** → FADT and MADT;
//! - **FADT**, hardware-reduced (no PM1 blocks, no SCI, no GPEs, no FACS):
//!   the sleep control and status registers, no PM timer (the TSC is the
//!   clocksource: a timer port would be a VM exit per read), the reset
//!   register with its value, x2APIC physical destination mode; the
//!   boot architecture flags say there is no VGA, no MSI and (by leaving
//!   the flag clear) no 8042 keyboard controller, so a kernel probes none;
//! - **MADT**: the x2APIC page address and one enabled Processor Local
//!   x2APIC (ID 0 until the hypervisor writes the real one), no IOAPIC (the
//!   partition has no interrupt controller but its local APIC) and no 8259
//!   (`PCAT_COMPAT` clear);
//! - **DSDT**: `\_S5` (`SLP_TYP` [`SLP_TYP_S5`]) and the COM1 device
//!   (`PNP0501` at [`VIRT_UART`], no interrupt: the kernel polls it).
//!
//! The layouts are `abi::acpi`'s zerocopy structs; the DSDT's AML is
//! written byte by byte below (ACPI 6.5 §20, "ACPI Machine Language").

use abi::acpi::{
    checksum, Fadt, Gas, MadtHeader, MadtX2Apic, Rsdp, SdtHeader, BOOT_ARCH_NO_MSI,
    BOOT_ARCH_NO_VGA, DSDT_SIGNATURE, FADT_FORCE_APIC_PHYSICAL, FADT_HW_REDUCED_ACPI,
    FADT_MINOR_REVISION, FADT_RESET_REG_SUP, FADT_REVISION, FADT_SIGNATURE, GAS_ACCESS_BYTE,
    MADT_ENABLED, MADT_SIGNATURE, MADT_X2APIC, RSDP_SIGNATURE, XSDT_SIGNATURE,
};
use abi::compat::{
    ACPI_TABLES_GPA, ACPI_TABLES_MAX, RESET_PORT, RESET_VALUE, SLEEP_CONTROL_PORT,
    SLEEP_STATUS_PORT, SLP_TYP_S5, VIRT_UART,
};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromZeros, IntoBytes};

/// OEM ID of every table.
const OEM_ID: [u8; 6] = *b"FLOTIL";
/// OEM table ID of every table.
const OEM_TABLE_ID: [u8; 8] = *b"PARTITN ";
/// Creator ID.
const CREATOR_ID: [u8; 4] = *b"FLOT";
/// The x2APIC page the MADT names (x2APIC mode does not use it).
const LOCAL_APIC_ADDRESS: u32 = 0xfee0_0000;

fn header(signature: [u8; 4], revision: u8, length: usize) -> SdtHeader {
    SdtHeader {
        signature,
        length: U32::new(u32::try_from(length).unwrap_or(u32::MAX)),
        revision,
        checksum: 0,
        oem_id: OEM_ID,
        oem_table_id: OEM_TABLE_ID,
        oem_revision: U32::new(1),
        creator_id: CREATOR_ID,
        creator_revision: U32::new(1),
    }
}

/// A table's bytes with its header's checksum filled in.
fn finished(mut table: Vec<u8>) -> Vec<u8> {
    // The checksum is byte 9 of the header (ACPI 6.5 Table 5.4).
    table[9] = 0;
    table[9] = checksum(&table);
    table
}

/// AML `PkgLength` (§20.2.4) for `body`, itself included, then `body`.
fn package(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    let len = body.len();
    if len + 1 < 0x40 {
        out.push(u8::try_from(len + 1).unwrap_or(0));
    } else {
        // Enough following bytes for 4 + 8k bits, the lead byte counted.
        let extra = (1..=3)
            .find(|&n| len + 1 + n < 1 << (4 + 8 * n))
            .unwrap_or(3);
        let total = len + 1 + extra;
        out.push(u8::try_from((extra << 6) | (total & 0xf)).unwrap_or(0));
        for i in 0..extra {
            out.push(u8::try_from((total >> (4 + 8 * i)) & 0xff).unwrap_or(0));
        }
    }
    out.extend_from_slice(body);
    out
}

/// AML opcodes and prefixes used (§20.2).
mod aml {
    pub const NAME: u8 = 0x08;
    pub const SCOPE: u8 = 0x10;
    pub const BUFFER: u8 = 0x11;
    pub const PACKAGE: u8 = 0x12;
    pub const BYTE: u8 = 0x0a;
    pub const DWORD: u8 = 0x0c;
    pub const ZERO: u8 = 0x00;
    pub const ONE: u8 = 0x01;
    pub const EXT: u8 = 0x5b;
    pub const DEVICE: u8 = 0x82;
    pub const ROOT: u8 = b'\\';
}

/// The EISA ID `PNP0501` (a 16550-compatible UART) as AML compresses it:
/// three 5-bit letters and four hex digits, big-endian, stored as a DWord.
fn eisa_id(id: &[u8; 7]) -> [u8; 4] {
    let letter = |c: u8| u16::from(c.wrapping_sub(b'@') & 0x1f);
    let hex = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .unwrap_or(0)
    };
    let vendor = (letter(id[0]) << 10) | (letter(id[1]) << 5) | letter(id[2]);
    let [v0, v1] = vendor.to_be_bytes();
    [
        v0,
        v1,
        (hex(id[3]) << 4) | hex(id[4]),
        (hex(id[5]) << 4) | hex(id[6]),
    ]
}

/// The DSDT's AML body: `Name (\_S5, Package { 5, 5, 0, 0 })` and
/// `Scope (\_SB) { Device (COM1) { _HID PNP0501, _UID 1, _CRS IO } }`.
fn dsdt_aml() -> Vec<u8> {
    let mut aml = Vec::new();
    // \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved.
    aml.extend_from_slice(&[aml::NAME, aml::ROOT]);
    aml.extend_from_slice(b"_S5_");
    aml.push(aml::PACKAGE);
    aml.extend(package(&[
        4,
        aml::BYTE,
        SLP_TYP_S5,
        aml::BYTE,
        SLP_TYP_S5,
        aml::ZERO,
        aml::ZERO,
    ]));

    let [base_lo, base_hi] = VIRT_UART.first.to_le_bytes();
    let ports = u8::try_from(VIRT_UART.last - VIRT_UART.first + 1).unwrap_or(8);
    // IO (Decode16, base, base, 1, 8) (§6.4.2.5), then the end tag (§6.4.2.9).
    let resources = [
        0x47, 0x01, base_lo, base_hi, base_lo, base_hi, 0x01, ports, 0x79, 0x00,
    ];
    let mut crs = vec![aml::BYTE, u8::try_from(resources.len()).unwrap_or(0)];
    crs.extend_from_slice(&resources);
    let mut device = b"COM1".to_vec();
    device.extend_from_slice(&[aml::NAME]);
    device.extend_from_slice(b"_HID");
    device.push(aml::DWORD);
    device.extend_from_slice(&eisa_id(b"PNP0501"));
    device.push(aml::NAME);
    device.extend_from_slice(b"_UID");
    device.push(aml::ONE);
    device.push(aml::NAME);
    device.extend_from_slice(b"_CRS");
    device.push(aml::BUFFER);
    device.extend(package(&crs));

    let mut scope = vec![aml::ROOT];
    scope.extend_from_slice(b"_SB_");
    scope.extend_from_slice(&[aml::EXT, aml::DEVICE]);
    scope.extend(package(&device));
    aml.push(aml::SCOPE);
    aml.extend(package(&scope));
    aml
}

fn fadt(dsdt_gpa: u64) -> Vec<u8> {
    let mut f = Fadt::new_zeroed();
    f.header = header(FADT_SIGNATURE, FADT_REVISION, core::mem::size_of::<Fadt>());
    f.dsdt = U32::new(u32::try_from(dsdt_gpa).unwrap_or(0));
    f.x_dsdt = U64::new(dsdt_gpa);
    f.iapc_boot_arch = U16::new(BOOT_ARCH_NO_VGA | BOOT_ARCH_NO_MSI);
    f.flags = U32::new(FADT_RESET_REG_SUP | FADT_FORCE_APIC_PHYSICAL | FADT_HW_REDUCED_ACPI);
    f.reset_reg = Gas::io(RESET_PORT, 8, GAS_ACCESS_BYTE);
    f.reset_value = RESET_VALUE;
    f.minor_version = FADT_MINOR_REVISION;
    f.sleep_control_reg = Gas::io(SLEEP_CONTROL_PORT, 8, GAS_ACCESS_BYTE);
    f.sleep_status_reg = Gas::io(SLEEP_STATUS_PORT, 8, GAS_ACCESS_BYTE);
    f.hypervisor_vendor = U64::new(u64::from_le_bytes(*b"Flotilla"));
    finished(f.as_bytes().to_vec())
}

fn madt() -> Vec<u8> {
    let len = core::mem::size_of::<MadtHeader>() + core::mem::size_of::<MadtX2Apic>();
    let mut t = MadtHeader {
        header: header(MADT_SIGNATURE, 5, len),
        local_apic_address: U32::new(LOCAL_APIC_ADDRESS),
        flags: U32::new(0),
    }
    .as_bytes()
    .to_vec();
    let cpu = MadtX2Apic {
        kind: MADT_X2APIC,
        length: u8::try_from(core::mem::size_of::<MadtX2Apic>()).unwrap_or(16),
        reserved: U16::new(0),
        x2apic_id: U32::new(0),
        flags: U32::new(MADT_ENABLED),
        uid: U32::new(0),
    };
    t.extend_from_slice(cpu.as_bytes());
    finished(t)
}

fn align16(v: usize) -> usize {
    v.div_ceil(16) * 16
}

/// Builds the tables, laid out from [`ACPI_TABLES_GPA`]: RSDP, XSDT, FADT,
/// MADT, DSDT, each 16-byte aligned. The same bytes serve every compat
/// partition (the hypervisor writes each one's x2APIC ID into its copy).
#[must_use]
pub fn build() -> Vec<u8> {
    let gpa = |offset: usize| ACPI_TABLES_GPA + offset as u64;
    let xsdt_at = align16(core::mem::size_of::<Rsdp>());
    let xsdt_len = core::mem::size_of::<SdtHeader>() + 2 * 8;
    let fadt_at = align16(xsdt_at + xsdt_len);
    let madt_at = align16(fadt_at + core::mem::size_of::<Fadt>());
    let madt = madt();
    let dsdt_at = align16(madt_at + madt.len());

    let aml = dsdt_aml();
    let mut dsdt = header(
        DSDT_SIGNATURE,
        2,
        core::mem::size_of::<SdtHeader>() + aml.len(),
    )
    .as_bytes()
    .to_vec();
    dsdt.extend_from_slice(&aml);
    let dsdt = finished(dsdt);

    let mut xsdt = header(XSDT_SIGNATURE, 1, xsdt_len).as_bytes().to_vec();
    xsdt.extend_from_slice(&gpa(fadt_at).to_le_bytes());
    xsdt.extend_from_slice(&gpa(madt_at).to_le_bytes());
    let xsdt = finished(xsdt);

    let mut rsdp = Rsdp {
        signature: RSDP_SIGNATURE,
        checksum: 0,
        oem_id: OEM_ID,
        revision: 2,
        rsdt_address: U32::new(0),
        length: U32::new(u32::try_from(core::mem::size_of::<Rsdp>()).unwrap_or(36)),
        xsdt_address: U64::new(gpa(xsdt_at)),
        extended_checksum: 0,
        reserved: [0; 3],
    };
    rsdp.checksum = checksum(&rsdp.as_bytes()[..20]);
    rsdp.extended_checksum = checksum(rsdp.as_bytes());

    let mut out = vec![0u8; dsdt_at + dsdt.len()];
    for (at, bytes) in [
        (0, rsdp.as_bytes()),
        (xsdt_at, xsdt.as_slice()),
        (fadt_at, fadt(gpa(dsdt_at)).as_slice()),
        (madt_at, madt.as_slice()),
        (dsdt_at, dsdt.as_slice()),
    ] {
        out[at..at + bytes.len()].copy_from_slice(bytes);
    }
    debug_assert!(out.len() as u64 <= ACPI_TABLES_MAX);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromBytes;

    fn sums_to_zero(bytes: &[u8]) -> bool {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b)) == 0
    }

    /// The table at guest-physical `gpa` of `t`.
    fn table(t: &[u8], gpa: u64) -> &[u8] {
        let at = usize::try_from(gpa - ACPI_TABLES_GPA).expect("offset");
        let (h, _) = SdtHeader::ref_from_prefix(&t[at..]).expect("header");
        &t[at..at + h.length.get() as usize]
    }

    #[test]
    fn rsdp_xsdt_and_every_table_check_out() {
        let t = build();
        assert!(t.len() as u64 <= ACPI_TABLES_MAX);
        let (rsdp, _) = Rsdp::ref_from_prefix(&t).expect("rsdp");
        assert_eq!(&rsdp.signature, b"RSD PTR ");
        assert!(sums_to_zero(&t[..20]) && sums_to_zero(&t[..36]));
        assert_eq!(rsdp.revision, 2);
        let xsdt = table(&t, rsdp.xsdt_address.get());
        assert_eq!(&xsdt[..4], b"XSDT");
        assert!(sums_to_zero(xsdt));
        let entries: Vec<u64> = xsdt[36..]
            .chunks_exact(8)
            .map(|e| u64::from_le_bytes(e.try_into().expect("8 bytes")))
            .collect();
        let signatures: Vec<&[u8]> = entries.iter().map(|&g| &table(&t, g)[..4]).collect();
        assert_eq!(signatures, [b"FACP".as_slice(), b"APIC".as_slice()]);
        for &g in &entries {
            assert!(sums_to_zero(table(&t, g)));
            assert_eq!(g % 16, 0);
        }
    }

    #[test]
    fn the_fadt_is_hardware_reduced_with_the_compat_registers() {
        let t = build();
        let (rsdp, _) = Rsdp::ref_from_prefix(&t).expect("rsdp");
        let xsdt = table(&t, rsdp.xsdt_address.get());
        let fadt_gpa = u64::from_le_bytes(xsdt[36..44].try_into().expect("8"));
        let f = Fadt::read_from_bytes(table(&t, fadt_gpa)).expect("276 bytes");
        assert_eq!((f.header.revision, f.minor_version), (6, 5));
        let flags = f.flags.get();
        assert_ne!(flags & FADT_HW_REDUCED_ACPI, 0);
        assert_ne!(flags & FADT_RESET_REG_SUP, 0);
        assert_eq!(f.sci_int.get(), 0);
        assert_eq!(f.firmware_ctrl.get(), 0);
        assert!(f.pm_blocks.iter().all(|b| b.get() == 0));
        assert_eq!(
            f.sleep_control_reg.address.get(),
            u64::from(SLEEP_CONTROL_PORT)
        );
        assert_eq!(
            f.sleep_status_reg.address.get(),
            u64::from(SLEEP_STATUS_PORT)
        );
        // No PM timer, in either form: the kernel's clocksource is the TSC.
        assert_eq!(f.x_pm_tmr_blk.address.get(), 0);
        assert_eq!((f.pm_tmr_blk.get(), f.pm_tmr_len), (0, 0));
        assert_eq!(f.reset_reg.address.get(), u64::from(RESET_PORT));
        assert_eq!(f.reset_value, RESET_VALUE);
        // No 8042 (bit 1 clear), no VGA, no MSI.
        assert_eq!(f.iapc_boot_arch.get() & 0b10, 0);
        let dsdt = table(&t, f.x_dsdt.get());
        assert_eq!(&dsdt[..4], b"DSDT");
        assert!(sums_to_zero(dsdt));
        assert_eq!(u64::from(f.dsdt.get()), f.x_dsdt.get());
    }

    #[test]
    fn the_madt_has_one_x2apic_the_hypervisor_can_patch() {
        let mut t = build();
        abi::acpi::set_x2apic_id(&mut t, ACPI_TABLES_GPA, 7).expect("patchable");
        let (rsdp, _) = Rsdp::ref_from_prefix(&t).expect("rsdp");
        let xsdt = table(&t, rsdp.xsdt_address.get());
        let madt_gpa = u64::from_le_bytes(xsdt[44..52].try_into().expect("8"));
        let madt = table(&t, madt_gpa);
        assert!(sums_to_zero(madt));
        let (m, rest) = MadtHeader::ref_from_prefix(madt).expect("madt");
        assert_eq!(m.flags.get(), 0);
        let cpu = MadtX2Apic::read_from_bytes(rest).expect("exactly one x2APIC");
        assert_eq!((cpu.kind, cpu.x2apic_id.get(), cpu.flags.get()), (9, 7, 1));
    }

    #[test]
    fn the_dsdt_aml_is_the_expected_bytes() {
        let aml = dsdt_aml();
        // Name (\_S5, Package (4) { 5, 5, 0, 0 })
        assert_eq!(
            &aml[..15],
            &[0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0a, 5, 0x0a, 5, 0, 0]
        );
        // Scope (\_SB) { Device (COM1) { ... } }
        let scope = &aml[15..];
        assert_eq!(scope[0], 0x10);
        assert_eq!(usize::from(scope[1]), scope.len() - 1);
        assert_eq!(&scope[2..7], b"\\_SB_");
        assert_eq!(&scope[7..9], &[0x5b, 0x82]);
        assert_eq!(usize::from(scope[9]), scope.len() - 9);
        assert_eq!(&scope[10..14], b"COM1");
        let device = &scope[14..];
        assert_eq!(
            &device[..10],
            &[0x08, b'_', b'H', b'I', b'D', 0x0c, 0x41, 0xd0, 0x05, 0x01]
        );
        assert_eq!(&device[10..16], &[0x08, b'_', b'U', b'I', b'D', 0x01]);
        assert_eq!(
            &device[16..],
            &[
                0x08, b'_', b'C', b'R', b'S', 0x11, 13, 0x0a, 10, 0x47, 1, 0xf8, 3, 0xf8, 3, 1, 8,
                0x79, 0
            ]
        );
    }

    #[test]
    fn package_lengths_count_themselves() {
        assert_eq!(package(&[0; 62])[0], 63);
        // 63 bytes need a two-byte PkgLength: 65 in all.
        let p = package(&[0; 63]);
        assert_eq!(
            (p[0] >> 6, usize::from(p[0] & 0xf) | usize::from(p[1]) << 4),
            (1, 65)
        );
        let p = package(&[0; 5000]);
        assert_eq!(p[0] >> 6, 2);
        assert_eq!(
            usize::from(p[0] & 0xf) | usize::from(p[1]) << 4 | usize::from(p[2]) << 12,
            5003
        );
        assert_eq!(p.len(), 5003);
    }
}
