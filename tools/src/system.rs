//! Host programs and files Flotilla needs, and where each comes from.
//!
//! Every lookup that fails produces a [`Missing`] whose one-line message names
//! the Debian package to install, never a bare "No such file or directory".
//! `ci/setup.sh` installs all of them; keep the two lists in step.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

/// A program looked up on `PATH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Program {
    /// The executable's name.
    pub name: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
}

/// QEMU, the fast emulator (`-kernel` boots and ISO boots).
pub const QEMU: Program = Program {
    name: "qemu-system-x86_64",
    package: "qemu-system-x86",
};
/// Bochs, the second emulator (VMX and a second SVM implementation).
pub const BOCHS: Program = Program {
    name: "bochs",
    package: "bochs",
};
/// GRUB's ISO builder.
pub const GRUB_MKRESCUE: Program = Program {
    name: "grub-mkrescue",
    package: "grub-common",
};
/// The ISO 9660 writer grub-mkrescue drives.
pub const XORRISO: Program = Program {
    name: "xorriso",
    package: "xorriso",
};
/// Builds the FAT image holding GRUB's EFI loader inside the ISO.
pub const MFORMAT: Program = Program {
    name: "mformat",
    package: "mtools",
};
/// Starts Bochs in a session of its own, away from the caller's terminal.
pub const SETSID: Program = Program {
    name: "setsid",
    package: "util-linux",
};

/// A data file (firmware, GRUB platform files) at a fixed path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataFile {
    /// Where Debian installs it.
    pub path: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
}

/// GRUB's BIOS platform files (the ISO's BIOS boot path).
pub const GRUB_BIOS: DataFile = DataFile {
    path: "/usr/lib/grub/i386-pc",
    package: "grub-pc-bin",
};
/// GRUB's UEFI platform files (the ISO's UEFI boot path).
pub const GRUB_EFI: DataFile = DataFile {
    path: "/usr/lib/grub/x86_64-efi",
    package: "grub-efi-amd64-bin",
};
/// OVMF firmware code (read-only pflash).
pub const OVMF_CODE: DataFile = DataFile {
    path: "/usr/share/OVMF/OVMF_CODE_4M.fd",
    package: "ovmf",
};
/// OVMF variable store template (copied, then a writable pflash).
pub const OVMF_VARS: DataFile = DataFile {
    path: "/usr/share/OVMF/OVMF_VARS_4M.fd",
    package: "ovmf",
};
/// The Bochs system BIOS.
pub const BOCHS_BIOS: DataFile = DataFile {
    path: "/usr/share/bochs/BIOS-bochs-latest",
    package: "bochsbios",
};
/// The VGA BIOS Bochs loads.
pub const BOCHS_VGABIOS: DataFile = DataFile {
    path: "/usr/share/vgabios/vgabios.bin",
    package: "vgabios",
};
/// Bochs' terminal display plugin: Debian's Bochs has no `nogui`, and the
/// terminal plugin is the only display that needs no X server.
pub const BOCHS_TERM_PLUGIN: DataFile = DataFile {
    path: "/usr/lib/x86_64-linux-gnu/bochs/plugins/libbx_term_gui.so",
    package: "bochs-term",
};

/// Something Flotilla needs is not installed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} not found: install the Debian package {package} (ci/setup.sh installs everything)")]
pub struct Missing {
    /// The program name or file path that was looked for.
    pub what: String,
    /// The Debian package providing it.
    pub package: &'static str,
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Program {
    /// Finds the program on this process's `PATH`.
    pub fn locate(&self) -> Result<PathBuf, Missing> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        self.locate_in(&path)
    }

    /// Finds the program in a `PATH`-style list of directories.
    pub fn locate_in(&self, path_var: &OsStr) -> Result<PathBuf, Missing> {
        std::env::split_paths(path_var)
            .map(|dir| dir.join(self.name))
            .find(|candidate| is_executable(candidate))
            .ok_or_else(|| self.missing())
    }

    /// The error for this program being absent (also used when spawning it
    /// fails with "not found" despite a successful lookup).
    pub fn missing(&self) -> Missing {
        Missing {
            what: self.name.to_string(),
            package: self.package,
        }
    }
}

impl DataFile {
    /// Returns the path if the file (or directory) exists.
    pub fn locate(&self) -> Result<PathBuf, Missing> {
        let path = Path::new(self.path);
        if path.exists() {
            Ok(path.to_path_buf())
        } else {
            Err(Missing {
                what: self.path.to_string(),
                package: self.package,
            })
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_names_the_package_in_one_line() {
        let err = QEMU.locate_in(OsStr::new("/nonexistent-a:/nonexistent-b"));
        let msg = err.unwrap_err().to_string();
        assert_eq!(
            msg,
            "qemu-system-x86_64 not found: install the Debian package qemu-system-x86 \
             (ci/setup.sh installs everything)"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn finds_an_executable_on_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Program {
            name: "flotilla-fake-tool",
            package: "none",
        };
        let exe = dir.path().join(fake.name);
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        // Not executable yet: not found.
        assert!(fake.locate_in(dir.path().as_os_str()).is_err());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let list = std::env::join_paths(["/nonexistent", dir.path().to_str().unwrap()]).unwrap();
        assert_eq!(fake.locate_in(&list).unwrap(), exe);
    }

    #[test]
    fn missing_file_names_the_package() {
        let f = DataFile {
            path: "/nonexistent/OVMF_CODE_4M.fd",
            package: "ovmf",
        };
        let msg = f.locate().unwrap_err().to_string();
        assert!(msg.starts_with(
            "/nonexistent/OVMF_CODE_4M.fd not found: install the Debian package ovmf"
        ));
    }
}
