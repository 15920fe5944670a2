//! Bootable GRUB multiboot2 ISOs (BIOS and UEFI in one image).
//!
//! The ISO tree is `boot/grub/grub.cfg` plus `boot/flotilla/hypervisor.elf`
//! (and, once layouts exist, the boot bundle as a multiboot2 module);
//! `grub-mkrescue` adds GRUB for both firmware kinds. The command line in
//! grub.cfg tells the hypervisor how to end a run where the ISO boots
//! (`abi::cmdline`): `qemu`, `bochs`, or `halt` on real hardware.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use abi::cmdline::{ExitMethod, EXIT_KEY};

use crate::error::{Error, Result};
use crate::system;

/// Path of the hypervisor inside the ISO.
pub const HYPERVISOR_PATH: &str = "/boot/flotilla/hypervisor.elf";
/// Path of the boot bundle inside the ISO (when there is one).
pub const BUNDLE_PATH: &str = "/boot/flotilla/bundle.bin";

/// What goes into an ISO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// The hypervisor ELF (multiboot2 header).
    pub hypervisor: PathBuf,
    /// How the hypervisor ends the run where this ISO boots.
    pub exit: ExitMethod,
    /// The boot bundle, loaded as a multiboot2 module (layouts, issue #3).
    pub bundle: Option<PathBuf>,
}

/// The kernel command line for an exit method.
pub fn kernel_cmdline(exit: ExitMethod) -> String {
    format!("{EXIT_KEY}={}", exit.as_str())
}

/// The grub.cfg for an image: boot at once, no menu.
pub fn grub_cfg(spec: &ImageSpec) -> String {
    let mut cfg = String::from("set timeout=0\nset default=0\n\nmenuentry \"Flotilla\" {\n");
    cfg.push_str(&format!(
        "    multiboot2 {HYPERVISOR_PATH} {}\n",
        kernel_cmdline(spec.exit)
    ));
    if spec.bundle.is_some() {
        cfg.push_str(&format!("    module2 {BUNDLE_PATH} bundle\n"));
    }
    cfg.push_str("    boot\n}\n");
    cfg
}

/// Checks that everything `grub-mkrescue` needs for a BIOS + UEFI ISO is
/// installed, and returns the path of grub-mkrescue.
pub fn check_tools() -> Result<PathBuf> {
    let mkrescue = system::GRUB_MKRESCUE.locate()?;
    system::XORRISO.locate()?;
    system::MFORMAT.locate()?;
    system::GRUB_BIOS.locate()?;
    system::GRUB_EFI.locate()?;
    Ok(mkrescue)
}

/// Builds the ISO described by `spec` at `output`.
pub fn build_iso(spec: &ImageSpec, output: &Path) -> Result<()> {
    let mkrescue = check_tools()?;
    let tree = tempfile::Builder::new()
        .prefix("flotilla-iso-")
        .tempdir()
        .map_err(|e| Error::io("creating a temporary directory", e))?;
    let put = |inside: &str, from: Option<&Path>, text: Option<&str>| -> Result<()> {
        let dest = tree.path().join(inside.trim_start_matches('/'));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        match (from, text) {
            (Some(src), _) => std::fs::copy(src, &dest)
                .map(drop)
                .map_err(|e| Error::io(format!("copying {}", src.display()), e)),
            (None, Some(text)) => std::fs::write(&dest, text)
                .map_err(|e| Error::io(format!("writing {}", dest.display()), e)),
            (None, None) => Ok(()),
        }
    };
    put("boot/grub/grub.cfg", None, Some(&grub_cfg(spec)))?;
    put(HYPERVISOR_PATH, Some(&spec.hypervisor), None)?;
    if let Some(bundle) = &spec.bundle {
        put(BUNDLE_PATH, Some(bundle), None)?;
    }
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    }
    let out = Command::new(&mkrescue)
        .arg("-o")
        .arg(output)
        .arg(tree.path())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("running grub-mkrescue", e))?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        return Err(Error::Tool {
            program: "grub-mkrescue".into(),
            status: out.status.to_string(),
            output: text.trim_end().to_string(),
        });
    }
    if !output.is_file() {
        return Err(Error::NoArtifact(output.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_boots_the_hypervisor_at_once() {
        let spec = ImageSpec {
            hypervisor: "/x/flotilla-hypervisor".into(),
            exit: ExitMethod::Bochs,
            bundle: None,
        };
        let cfg = grub_cfg(&spec);
        assert!(cfg.starts_with("set timeout=0\n"));
        assert!(cfg.contains(
            "menuentry \"Flotilla\" {\n    multiboot2 /boot/flotilla/hypervisor.elf flotilla.exit=bochs\n    boot\n}"
        ));
        assert!(!cfg.contains("module2"));
    }

    #[test]
    fn grub_cfg_loads_the_bundle_as_a_module() {
        let spec = ImageSpec {
            hypervisor: "/x/h".into(),
            exit: ExitMethod::Halt,
            bundle: Some("/x/bundle".into()),
        };
        let cfg = grub_cfg(&spec);
        assert!(cfg.contains(
            "flotilla.exit=halt\n    module2 /boot/flotilla/bundle.bin bundle\n    boot"
        ));
    }

    #[test]
    fn cmdline_matches_the_abi_parser() {
        for m in [ExitMethod::Qemu, ExitMethod::Bochs, ExitMethod::Halt] {
            let line = kernel_cmdline(m);
            let value = abi::cmdline::find(&line, EXIT_KEY).unwrap();
            assert_eq!(ExitMethod::parse(value), Some(m));
        }
    }
}
