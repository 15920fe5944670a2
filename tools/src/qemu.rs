//! QEMU command lines, built as a pure function of what to boot.
//!
//! Every QEMU run is headless (`-display none`), puts the first serial port on
//! stdio, does not reboot (`-no-reboot`: a triple fault ends the process) and
//! has the `isa-debug-exit` device through which the hypervisor reports the
//! end of the run (`abi::run_end`).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::accel::Accel;

/// What QEMU boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QemuBoot {
    /// `-kernel ELF -append CMDLINE [-initrd FILE]`: QEMU loads the ELF
    /// through its PVH note.
    Kernel {
        /// The hypervisor ELF.
        elf: PathBuf,
        /// The kernel command line.
        cmdline: String,
        /// The boot bundle, once layouts exist.
        initrd: Option<PathBuf>,
    },
    /// `-cdrom ISO` with SeaBIOS, or with OVMF when `uefi` is given.
    Cdrom {
        /// The GRUB ISO.
        iso: PathBuf,
        /// UEFI firmware; `None` boots with the default BIOS.
        uefi: Option<UefiFirmware>,
    },
}

/// OVMF as two pflash drives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UefiFirmware {
    /// Read-only firmware code.
    pub code: PathBuf,
    /// A writable copy of the variable store (never the system's template).
    pub vars: PathBuf,
}

/// A QEMU invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuInvocation {
    /// TCG or KVM.
    pub accel: Accel,
    /// `-cpu` model; `None` means `max` under TCG and `host` under KVM.
    pub cpu_model: Option<String>,
    /// Number of cores (`-smp`).
    pub cpus: u32,
    /// Guest RAM in MiB (`-m`).
    pub memory_mib: u64,
    /// What to boot.
    pub boot: QemuBoot,
}

/// The I/O base and size of the debug-exit device, as QEMU spells them.
fn debug_exit_device() -> String {
    format!(
        "isa-debug-exit,iobase={:#x},iosize={:#04x}",
        abi::run_end::QEMU_DEBUG_EXIT_PORT,
        abi::run_end::QEMU_DEBUG_EXIT_SIZE
    )
}

/// The arguments (without the program name) for an invocation.
pub fn arguments(inv: &QemuInvocation) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
    let cpu = inv.cpu_model.clone().unwrap_or_else(|| {
        match inv.accel {
            Accel::Tcg => "max",
            Accel::Kvm => "host",
        }
        .to_string()
    });
    push(&["-machine", "pc"]);
    push(&["-accel", &inv.accel.to_string()]);
    push(&["-cpu", &cpu]);
    push(&["-smp", &inv.cpus.to_string()]);
    push(&["-m", &format!("{}M", inv.memory_mib)]);
    push(&["-display", "none", "-serial", "stdio", "-no-reboot"]);
    push(&["-device", &debug_exit_device()]);
    match &inv.boot {
        QemuBoot::Kernel {
            elf,
            cmdline,
            initrd,
        } => {
            args.push("-kernel".into());
            args.push(elf.into());
            args.push("-append".into());
            args.push(cmdline.into());
            if let Some(initrd) = initrd {
                args.push("-initrd".into());
                args.push(initrd.into());
            }
        }
        QemuBoot::Cdrom { iso, uefi } => {
            if let Some(fw) = uefi {
                let mut code = OsString::from("if=pflash,format=raw,unit=0,readonly=on,file=");
                code.push(&fw.code);
                let mut vars = OsString::from("if=pflash,format=raw,unit=1,file=");
                vars.push(&fw.vars);
                args.extend(["-drive".into(), code, "-drive".into(), vars]);
            }
            args.push("-cdrom".into());
            args.push(iso.into());
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn kernel(accel: Accel) -> QemuInvocation {
        QemuInvocation {
            accel,
            cpu_model: None,
            cpus: 4,
            memory_mib: 512,
            boot: QemuBoot::Kernel {
                elf: "/t/flotilla-hypervisor".into(),
                cmdline: "flotilla.exit=qemu".into(),
                initrd: None,
            },
        }
    }

    #[test]
    fn kernel_boot_under_tcg() {
        let args = strings(&arguments(&kernel(Accel::Tcg)));
        assert_eq!(
            args.join(" "),
            "-machine pc -accel tcg -cpu max -smp 4 -m 512M -display none -serial stdio \
             -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
             -kernel /t/flotilla-hypervisor -append flotilla.exit=qemu"
        );
    }

    #[test]
    fn kvm_uses_the_host_cpu_and_initrd_is_passed() {
        let mut inv = kernel(Accel::Kvm);
        if let QemuBoot::Kernel { initrd, .. } = &mut inv.boot {
            *initrd = Some("/t/bundle".into());
        }
        let args = strings(&arguments(&inv));
        let joined = args.join(" ");
        assert!(joined.contains("-accel kvm -cpu host"));
        assert!(joined.ends_with("-initrd /t/bundle"));
        inv.cpu_model = Some("EPYC".into());
        assert!(strings(&arguments(&inv)).join(" ").contains("-cpu EPYC"));
    }

    #[test]
    fn cdrom_boots_with_bios_or_ovmf() {
        let mut inv = kernel(Accel::Tcg);
        inv.boot = QemuBoot::Cdrom {
            iso: "/t/boot.iso".into(),
            uefi: None,
        };
        let bios = strings(&arguments(&inv)).join(" ");
        assert!(bios.ends_with("-cdrom /t/boot.iso"));
        assert!(!bios.contains("pflash") && !bios.contains("-kernel"));

        inv.boot = QemuBoot::Cdrom {
            iso: "/t/boot.iso".into(),
            uefi: Some(UefiFirmware {
                code: "/fw/CODE.fd".into(),
                vars: "/tmp/VARS.fd".into(),
            }),
        };
        let uefi = strings(&arguments(&inv)).join(" ");
        assert!(uefi.contains(
            "-drive if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd \
             -drive if=pflash,format=raw,unit=1,file=/tmp/VARS.fd -cdrom /t/boot.iso"
        ));
    }
}
