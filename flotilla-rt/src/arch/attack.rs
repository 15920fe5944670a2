//! The forbidden (or merely hostile) actions of the `rogue` workload, as
//! safe functions: each does exactly one thing the hypervisor must stop,
//! refuse or shrug off (`docs/threat-model.md`, the attack matrix). None of
//! them touches memory or state the kernel relies on, so each returns
//! normally when nothing stops it (bare mode, or a hypervisor that failed
//! to contain it); the few that cannot return say so in their type.
//!
//! Values written to devices are chosen to be harmless if the write went
//! through (a reset port gets "no reset", the RTC index keeps NMIs enabled),
//! so a containment failure shows up as a clean "not stopped" result rather
//! than as collateral damage.

use super::cpu;
use abi::regs::half;
use core::arch::asm;

/// End of the kernel's identity map (see `entry.rs`).
const MAP_END: u64 = 8 << 30;

/// Writes a word at `gpa`, which lies beyond the partition's RAM.
/// `ram_end` is the end of the partition's RAM; addresses below it are
/// refused (`false`) so the kernel cannot corrupt itself.
pub fn write_beyond(gpa: u64, ram_end: u64, value: u64) -> bool {
    if gpa < ram_end || gpa.checked_add(8).is_none_or(|e| e > MAP_END) {
        return false;
    }
    // SAFETY: [gpa, gpa + 8) is identity-mapped (0..8 GiB) and lies at or
    // above the end of the partition's RAM, so it is no Rust object: the
    // write either reaches nothing (bare) or is stopped by the hypervisor.
    unsafe { core::ptr::write_volatile(gpa as *mut u64, value) };
    true
}

/// Reads a word at `gpa`, which lies beyond the partition's RAM (refused
/// below `ram_end` or above 8 GiB, the end of the map).
pub fn read_beyond(gpa: u64, ram_end: u64) -> Option<u64> {
    if gpa < ram_end || gpa.checked_add(8).is_none_or(|e| e > MAP_END) {
        return None;
    }
    // SAFETY: as in `write_beyond`; a volatile read of unowned memory
    // creates no reference to a Rust object.
    Some(unsafe { core::ptr::read_volatile(gpa as *const u64) })
}

/// Reads a 32-bit MMIO register at `gpa` beyond the partition's RAM (the
/// IOAPIC and HPET registers are 32 bits wide).
pub fn read_mmio32(gpa: u64, ram_end: u64) -> Option<u32> {
    if gpa < ram_end || gpa.checked_add(4).is_none_or(|e| e > MAP_END) {
        return None;
    }
    // SAFETY: as in `read_beyond`: identity-mapped, outside the kernel's
    // RAM, no Rust object; a register read of the IOAPIC/HPET (bare) has
    // no side effect.
    Some(unsafe { core::ptr::read_volatile(gpa as *const u32) })
}

/// Calls code at `gpa`, beyond the partition's RAM: the instruction fetch
/// must be stopped. Only done under the hypervisor (`false` otherwise, or
/// for an address inside RAM).
pub fn fetch_beyond(gpa: u64, ram_end: u64, hypervised: bool) -> bool {
    if !hypervised || gpa < ram_end || gpa >= MAP_END {
        return false;
    }
    // SAFETY: under the hypervisor nothing is mapped at `gpa` (it lies
    // beyond the partition's RAM and is not one of its channel regions,
    // which the caller does not pass), so the fetch of the first byte ends
    // the partition; the call never returns into the kernel. Every
    // register the callee could touch is declared clobbered.
    unsafe {
        asm!(
            "call {target}",
            target = in(reg) gpa,
            clobber_abi("C"),
        );
    }
    true
}

/// Whether the CPU supports 1 GiB pages (CPUID 0x8000_0001 EDX\[26\]).
pub fn has_1g_pages() -> bool {
    cpu::cpuid(0x8000_0000, 0)[0] >= 0x8000_0001
        && cpu::cpuid(0x8000_0001, 0)[3] & abi::regs::cpuid::ext1::EDX_PAGE1GB != 0
}

/// Maps a 1 GiB guest page of guest-physical `0..1 GiB` at virtual
/// `SPARE_1G_VA` (a slot of the kernel's page tables
/// nothing else uses), checks that the partition's first RAM word reads
/// the same through it, then reads the word at `offset` in it, beyond the
/// partition's RAM. Returns `None` when the first check fails or the
/// offset is inside RAM (nothing beyond RAM was touched).
pub fn touch_through_1g_page(offset: u64, ram_end: u64) -> Option<u64> {
    if offset < ram_end || offset.checked_add(8).is_none_or(|e| e > 1 << 30) {
        return None;
    }
    let va = super::entry::map_spare_1g_page(0, false);
    let (image_start, _) = super::image_range();
    // SAFETY: `image_start` is inside the partition's RAM and mapped twice
    // now: identity and through the new 1 GiB page; a volatile read of it
    // creates no reference.
    let (direct, through) = unsafe {
        (
            core::ptr::read_volatile(image_start as *const u64),
            core::ptr::read_volatile((va + image_start) as *const u64),
        )
    };
    if direct != through {
        return None;
    }
    // SAFETY: `va + offset` maps guest-physical `offset`, which lies at or
    // beyond the end of RAM: no Rust object; the read is the hypervisor's
    // to stop.
    Some(unsafe { core::ptr::read_volatile((va + offset) as *const u64) })
}

/// The width of an I/O access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// `outb` / `inb`.
    Byte,
    /// `outw` / `inw`.
    Word,
    /// `outl` / `inl`.
    Dword,
}

/// Writes `value` to an I/O port the partition was not granted.
pub fn port_out(port: u16, width: Width, value: u32) {
    // SAFETY: the kernel uses no port under the hypervisor; the values
    // callers pass are harmless for the device if the write went through
    // (see the module documentation). Port I/O touches no memory.
    unsafe {
        match width {
            Width::Byte => {
                asm!("out dx, al", in("dx") port, in("al") half::low8(u64::from(value)), options(nomem, nostack, preserves_flags))
            }
            Width::Word => {
                asm!("out dx, ax", in("dx") port, in("ax") half::low16(u64::from(value)), options(nomem, nostack, preserves_flags))
            }
            Width::Dword => {
                asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
            }
        }
    }
}

/// Reads an I/O port the partition was not granted.
pub fn port_in(port: u16, width: Width) -> u32 {
    let value: u32;
    // SAFETY: reads of the ports callers pass (status registers) have no
    // side effect on the device; port I/O touches no memory.
    unsafe {
        match width {
            Width::Byte => {
                let v: u8;
                asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack, preserves_flags));
                value = u32::from(v);
            }
            Width::Word => {
                let v: u16;
                asm!("in ax, dx", in("dx") port, out("ax") v, options(nomem, nostack, preserves_flags));
                value = u32::from(v);
            }
            Width::Dword => {
                asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags));
            }
        }
    }
    value
}

/// `rep outsb`: writes `bytes` to `port` with one string instruction.
pub fn port_out_string(port: u16, bytes: &[u8]) {
    // SAFETY: reads `bytes.len()` bytes from `bytes` (a valid slice; the
    // direction flag is clear, as the ABI requires) and writes them to
    // the port; rsi and rcx are declared clobbered.
    unsafe {
        asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(nostack, preserves_flags, readonly),
        );
    }
}

/// Reads an MSR the partition may not read.
pub fn msr_read(msr: u32) -> u64 {
    // SAFETY: the MSRs callers pass are intercepted by the hypervisor;
    // bare, a missing one raises #GP, which the kernel reports. Reading has
    // no side effect.
    unsafe { cpu::rdmsr(msr) }
}

/// Writes an MSR the partition may not write (or one it may, for the
/// harmless cases of the matrix).
pub fn msr_write(msr: u32, value: u64) {
    // SAFETY: the hypervisor intercepts the MSRs callers pass (or owns
    // their switching); the values are chosen harmless for this kernel
    // (no MSR it depends on for paging, segmentation or its timer).
    unsafe { cpu::wrmsr(msr, value) };
}

/// Writes `IA32_APIC_BASE` with its current value (a no-op for the CPU,
/// forbidden by the hypervisor).
pub fn rewrite_apic_base() {
    msr_write(x86::msr::IA32_APIC_BASE, super::apic::apic_base());
}

/// Sets CR4.OSXSAVE (if the CPU has XSAVE) and executes XSETBV with `xcr`
/// and `value`. Returns `false` without XSAVE (nothing was tried).
pub fn xsetbv(xcr: u32, value: u64) -> bool {
    if cpu::cpuid(1, 0)[2] & abi::regs::cpuid::leaf1_ecx::XSAVE == 0 {
        return false;
    }
    // XSETBV takes the value in EDX:EAX.
    let (high, low) = half::split_u64(value);
    // SAFETY: the CPU has XSAVE (checked), so CR4.OSXSAVE may be set; it
    // only enables XGETBV/XSETBV/XSAVE, which the soft-float kernel does
    // not use otherwise. XSETBV changes only XCR state, which the kernel
    // does not rely on (no SSE/AVX code); an invalid value raises #GP bare
    // and is the hypervisor's to refuse.
    // CR4 by hand: `x86::controlregs::cr4()` drops the bits its `Cr4` does
    // not name, so a read-modify-write through it could clear them.
    unsafe {
        let cr4: usize;
        asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags));
        let cr4 = cr4 | x86::controlregs::Cr4::CR4_ENABLE_OS_XSAVE.bits();
        asm!("mov cr4, {}", in(reg) cr4, options(nomem, nostack, preserves_flags));
        asm!(
            "xsetbv",
            in("ecx") xcr,
            in("eax") low,
            in("edx") high,
            options(nomem, nostack, preserves_flags),
        );
    }
    true
}

/// A virtualization instruction of either vendor (or the other vendor's
/// hypercall instruction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtInstruction {
    /// SVM `VMRUN rax`.
    Vmrun,
    /// SVM `VMLOAD rax`.
    Vmload,
    /// SVM `VMSAVE rax`.
    Vmsave,
    /// SVM `STGI`.
    Stgi,
    /// SVM `CLGI`.
    Clgi,
    /// SVM `SKINIT eax`.
    Skinit,
    /// SVM `INVLPGA rax, ecx`.
    Invlpga,
    /// VMX `VMXON m64`.
    Vmxon,
    /// VMX `VMPTRLD m64`.
    Vmptrld,
    /// VMX `VMCLEAR m64`.
    Vmclear,
    /// VMX `VMREAD r64, r64`.
    Vmread,
    /// VMX `INVEPT r64, m128`.
    Invept,
    /// `VMCALL` (the VMX hypercall instruction).
    Vmcall,
    /// `VMMCALL` (the SVM hypercall instruction).
    Vmmcall,
    /// `INVD` (invalidate caches without writing back).
    Invd,
}

/// Executes `insn`. Each either exits to the hypervisor (which must stop
/// the partition) or raises #UD in the guest (the other vendor's
/// instructions, and this vendor's without the hypervisor's consent),
/// which the kernel's exception handler reports and ends the partition
/// with. `page` is a page-aligned address inside the partition's RAM
/// (the image's first page) for the instructions that take one.
pub fn virtualization_instruction(insn: VirtInstruction, page: u64) {
    let operand: [u64; 2] = [page, 0];
    let op = operand.as_ptr();
    // SAFETY: (every arm) the instruction is either intercepted by the
    // hypervisor, which stops the partition before it has any effect, or
    // raises #UD (no VMX operation, EFER.SVME clear as the guest sees it,
    // the other vendor's opcode) before touching memory or state, and the
    // kernel's #UD handler ends the partition. Memory operands point at
    // `operand`, a live local the instructions only read. `INVD` under a
    // hypervisor that failed to intercept it drops dirty cache lines: the
    // matrix expects it stopped; bare, it is never run (see `rogue.rs`).
    // The hypercall instructions pass `VERSION` (0), which has no effect.
    unsafe {
        match insn {
            VirtInstruction::Vmrun => asm!("vmrun", in("rax") page, options(nostack)),
            VirtInstruction::Vmload => asm!("vmload", in("rax") page, options(nostack)),
            VirtInstruction::Vmsave => asm!("vmsave", in("rax") page, options(nostack)),
            VirtInstruction::Stgi => asm!("stgi", options(nostack)),
            VirtInstruction::Clgi => asm!("clgi", options(nostack)),
            VirtInstruction::Skinit => {
                asm!("skinit", in("eax") half::low32(page), options(nostack))
            }
            VirtInstruction::Invlpga => {
                asm!("invlpga", in("rax") page, in("ecx") 1u32, options(nostack))
            }
            VirtInstruction::Vmxon => asm!("vmxon [{}]", in(reg) op, options(nostack)),
            VirtInstruction::Vmptrld => asm!("vmptrld [{}]", in(reg) op, options(nostack)),
            VirtInstruction::Vmclear => asm!("vmclear [{}]", in(reg) op, options(nostack)),
            VirtInstruction::Vmread => {
                asm!("vmread {}, {}", out(reg) _, in(reg) 0x6800u64, options(nostack))
            }
            VirtInstruction::Invept => {
                asm!("invept {}, [{}]", in(reg) 1u64, in(reg) op, options(nostack))
            }
            VirtInstruction::Vmcall => asm!("vmcall", inout("rax") 0u64 => _, options(nostack)),
            VirtInstruction::Vmmcall => {
                asm!("vmmcall", inout("rax") 0u64 => _, options(nostack))
            }
            VirtInstruction::Invd => asm!("invd", options(nostack)),
        }
    }
}

/// `WBINVD` forever: a partition that keeps the hypervisor (or the caches)
/// busy until the run timeout stops it.
pub fn wbinvd_forever() -> ! {
    loop {
        // SAFETY: WBINVD writes back and invalidates caches; it changes no
        // memory contents.
        unsafe { asm!("wbinvd", options(nostack, preserves_flags)) };
    }
}

/// `cli; hlt` forever: only an NMI (the run timeout's) can end it.
pub fn cli_hlt_forever() -> ! {
    cpu::halt_forever()
}

/// CPUID forever: one exit per instruction until the run timeout stops it.
pub fn cpuid_forever() -> ! {
    let mut leaf = 0u32;
    loop {
        let _ = core::hint::black_box(cpu::cpuid(leaf & 1, 0));
        leaf = leaf.wrapping_add(1);
    }
}

const VMMCALL: &[u8; 3] = abi::hypercall::Instruction::Vmmcall.bytes();
const VMCALL: &[u8; 3] = abi::hypercall::Instruction::Vmcall.bytes();

// The hypercall instructions from their bytes in `abi` (written once).
core::arch::global_asm!(
    ".pushsection .text.ring3, \"ax\"",
    ".global rogue_ring3_vmmcall",
    "rogue_ring3_vmmcall:",
    ".byte {svm0}, {svm1}, {svm2}",
    "ud2",
    ".global rogue_ring3_vmcall",
    "rogue_ring3_vmcall:",
    ".byte {vmx0}, {vmx1}, {vmx2}",
    "ud2",
    ".popsection",
    svm0 = const VMMCALL[0], svm1 = const VMMCALL[1], svm2 = const VMMCALL[2],
    vmx0 = const VMCALL[0], vmx1 = const VMCALL[1], vmx2 = const VMCALL[2],
);

unsafe extern "C" {
    static rogue_ring3_vmmcall: u8;
    static rogue_ring3_vmcall: u8;
}

/// Drops to ring 3 and makes the `EXIT(code)` hypercall from there
/// (`vmmcall` when `svm`, else `vmcall`), followed by `ud2`: if the
/// hypervisor honours a hypercall from CPL 3 the partition exits with
/// `code`; if it refuses it with an error, the `ud2` raises #UD into the
/// kernel's handler (exit code 255); or the hypervisor stops the partition.
/// Ring 3 runs the kernel's code through a user-accessible 1 GiB alias of
/// guest-physical `0..1 GiB`, with interrupts off.
pub fn hypercall_from_ring3(svm: bool, code: u64) -> ! {
    let alias = super::entry::map_spare_1g_page(0, true);
    let stub = if svm {
        core::ptr::addr_of!(rogue_ring3_vmmcall)
    } else {
        core::ptr::addr_of!(rogue_ring3_vmcall)
    } as u64;
    let rsp: u64;
    // SAFETY: reading RSP has no effect.
    unsafe { asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    // The exception from ring 3 lands on this stack, below what is in use;
    // it never returns here.
    super::gdt::set_rsp0((rsp - 1024) & !15);
    let user_rsp = alias + ((rsp - 4096) & !15);
    // SAFETY: IRETQ to ring 3 with the GDT's user selectors, RFLAGS with
    // only the reserved bit 1 (interrupts off), RIP at the stub through the
    // user alias (the image lies below 1 GiB) and a stack through the same
    // alias. The stub makes one hypercall and then raises #UD, which the
    // CPU delivers on RSP0 (set above) to the kernel's handler; nothing
    // returns here, and ring 3 touches no memory but its own stub.
    unsafe {
        asm!(
            "push {ss}",
            "push {ursp}",
            "push 2",
            "push {cs}",
            "push {rip}",
            "iretq",
            ss = in(reg) u64::from(super::gdt::USER_DS),
            ursp = in(reg) user_rsp,
            cs = in(reg) u64::from(super::gdt::USER_CS),
            rip = in(reg) alias + stub,
            in("rax") abi::hypercall::EXIT,
            in("rdi") code,
            options(noreturn),
        );
    }
}

/// Loads an empty IDT and raises an exception (see `idt::triple_fault`).
pub fn triple_fault() -> ! {
    super::idt::triple_fault()
}
