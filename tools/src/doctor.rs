//! `flotilla doctor`: what this host can do — KVM and nested virtualization,
//! the emulators, GRUB and firmware — and what to install or enable.
//!
//! Gathering facts ([`probe`]) is separate from judging them ([`diagnose`],
//! pure and unit-tested), so every verdict can be tested without the host.

use crate::accel::{HostFacts, KvmDevice, VirtExtension};
use crate::system::{self, DataFile, Program};
use std::fmt;
use std::process::Command;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Present and usable.
    Ok,
    /// Missing, but only an optional capability depends on it.
    Optional,
    /// Missing, and something `flotilla` needs depends on it.
    Missing,
}

/// One line of the doctor's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub found: String,
    /// How to fix it, when not OK.
    pub fix: Option<String>,
}

/// Everything the doctor looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// KVM and nested virtualization.
    pub host: HostFacts,
    /// Programs and whether they were found (with QEMU's version line).
    pub programs: Vec<(Program, bool)>,
    /// Data files and whether they exist.
    pub files: Vec<(DataFile, bool)>,
    /// First line of `qemu-system-x86_64 --version`, if it ran.
    pub qemu_version: Option<String>,
}

/// The doctor's verdicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    /// One check per line.
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// Whether everything the default runs and the tests need is present
    /// (KVM is optional: TCG and Bochs need no hardware support).
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Missing)
    }
}

/// Reads the host: `/dev/kvm`, `/proc/cpuinfo`, the KVM module's `nested`
/// parameter, the programs on `PATH` and the firmware files.
pub fn probe() -> Facts {
    let programs = [
        system::QEMU,
        system::BOCHS,
        system::GRUB_MKRESCUE,
        system::XORRISO,
        system::MFORMAT,
        system::SETSID,
    ]
    .into_iter()
    .map(|p| (p, p.locate().is_ok()))
    .collect();
    let files = [
        system::GRUB_BIOS,
        system::GRUB_EFI,
        system::OVMF_CODE,
        system::OVMF_VARS,
        system::BOCHS_BIOS,
        system::BOCHS_VGABIOS,
        system::BOCHS_TERM_PLUGIN,
    ]
    .into_iter()
    .map(|f| (f, f.locate().is_ok()))
    .collect();
    let qemu_version = Command::new(system::QEMU.name)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string));
    Facts {
        host: HostFacts::probe(),
        programs,
        files,
        qemu_version,
    }
}

fn qemu_major(version_line: &str) -> Option<u32> {
    let after = version_line.split("version ").nth(1)?;
    after.split('.').next()?.trim().parse().ok()
}

/// Judges the facts.
pub fn diagnose(facts: &Facts) -> Diagnosis {
    let mut checks = Vec::new();
    let setup = "ci/setup.sh installs every package";

    // KVM: optional (faster runs with --accel kvm).
    let ext = facts.host.extension;
    checks.push(Check {
        what: "CPU virtualization flag".into(),
        status: if ext.is_some() { Status::Ok } else { Status::Optional },
        found: match ext {
            Some(VirtExtension::Vmx) => "vmx (Intel VT-x)".into(),
            Some(VirtExtension::Svm) => "svm (AMD-V)".into(),
            None => "neither vmx nor svm in /proc/cpuinfo".into(),
        },
        fix: ext.is_none().then(|| {
            "enable VT-x/AMD-V in the firmware; in a cloud VM, ask for nested virtualization (TCG and Bochs work without it)".into()
        }),
    });
    checks.push(Check {
        what: "/dev/kvm".into(),
        status: if facts.host.kvm_device == KvmDevice::Usable {
            Status::Ok
        } else {
            Status::Optional
        },
        found: match &facts.host.kvm_device {
            KvmDevice::Usable => "usable".into(),
            KvmDevice::Missing => "missing".into(),
            KvmDevice::Inaccessible(e) => format!("not accessible: {e}"),
        },
        fix: match &facts.host.kvm_device {
            KvmDevice::Usable => None,
            KvmDevice::Missing => {
                Some("load the KVM module: sudo modprobe kvm_intel (or kvm_amd)".into())
            }
            KvmDevice::Inaccessible(_) => {
                Some("add yourself to the kvm group: sudo usermod -aG kvm $USER".into())
            }
        },
    });
    if let Some(ext) = ext {
        let on = matches!(facts.host.nested.as_deref(), Some("Y" | "y" | "1"));
        checks.push(Check {
            what: format!("nested virtualization ({})", ext.kvm_module()),
            status: if on { Status::Ok } else { Status::Optional },
            found: match &facts.host.nested {
                Some(v) => format!("{} = {v}", ext.nested_parameter()),
                None => format!("{} unreadable (module not loaded?)", ext.nested_parameter()),
            },
            fix: (!on).then(|| {
                format!(
                    "echo 'options {m} nested=1' | sudo tee /etc/modprobe.d/kvm-nested.conf && sudo modprobe -r {m} && sudo modprobe {m}",
                    m = ext.kvm_module()
                )
            }),
        });
    }

    for (program, found) in &facts.programs {
        let mut status = if *found { Status::Ok } else { Status::Missing };
        let mut detail = if *found {
            "found".to_string()
        } else {
            "not on PATH".to_string()
        };
        let mut fix =
            (!found).then(|| format!("install the Debian package {} ({setup})", program.package));
        if *found && program.name == system::QEMU.name {
            if let Some(line) = &facts.qemu_version {
                detail = line.clone();
                if qemu_major(line).is_some_and(|m| m < 8) {
                    status = Status::Missing;
                    fix = Some(format!(
                        "QEMU 8 or newer is needed for SVM with nested paging under TCG; on Debian 12 take it from bookworm-backports ({setup})"
                    ));
                }
            }
        }
        checks.push(Check {
            what: program.name.to_string(),
            status,
            found: detail,
            fix,
        });
    }
    for (file, found) in &facts.files {
        checks.push(Check {
            what: file.path.to_string(),
            status: if *found { Status::Ok } else { Status::Missing },
            found: if *found {
                "present".into()
            } else {
                "missing".into()
            },
            fix: (!found).then(|| format!("install the Debian package {} ({setup})", file.package)),
        });
    }
    Diagnosis { checks }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.checks.iter().map(|c| c.what.len()).max().unwrap_or(0);
        for c in &self.checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Optional => "opt ",
                Status::Missing => "MISS",
            };
            writeln!(f, "{mark} {:width$}  {}", c.what, c.found)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "     {:width$}  -> {fix}", "")?;
            }
        }
        let kvm = self
            .checks
            .iter()
            .filter(|c| {
                c.what.starts_with("nested") || c.what == "/dev/kvm" || c.what.starts_with("CPU")
            })
            .all(|c| c.status == Status::Ok);
        writeln!(f)?;
        writeln!(
            f,
            "{}",
            if self.ready() {
                "ready: flotilla run (QEMU TCG) and --emulator bochs work here"
            } else {
                "not ready: install what is marked MISS"
            }
        )?;
        write!(
            f,
            "{}",
            if kvm {
                "KVM with nested virtualization: available (--accel kvm)"
            } else {
                "KVM with nested virtualization: not available (--accel auto falls back to TCG)"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(
        kvm: KvmDevice,
        ext: Option<VirtExtension>,
        nested: Option<&str>,
        qemu: &str,
    ) -> Facts {
        Facts {
            host: HostFacts {
                kvm_device: kvm,
                extension: ext,
                nested: nested.map(str::to_string),
            },
            programs: vec![(system::QEMU, true), (system::BOCHS, true)],
            files: vec![(system::OVMF_CODE, true)],
            qemu_version: Some(qemu.to_string()),
        }
    }

    #[test]
    fn a_host_without_kvm_is_still_ready_for_tcg_and_bochs() {
        let d = diagnose(&facts(
            KvmDevice::Missing,
            None,
            None,
            "QEMU emulator version 10.0.2",
        ));
        assert!(d.ready());
        let text = d.to_string();
        assert!(
            text.contains("not available (--accel auto falls back to TCG)"),
            "{text}"
        );
        assert!(text.contains("opt  /dev/kvm"), "{text}");
    }

    #[test]
    fn nested_kvm_on_intel_is_reported_available() {
        let d = diagnose(&facts(
            KvmDevice::Usable,
            Some(VirtExtension::Vmx),
            Some("Y"),
            "QEMU emulator version 10.0.2",
        ));
        assert!(d.ready());
        assert!(d
            .to_string()
            .contains("KVM with nested virtualization: available"));
    }

    #[test]
    fn nested_off_says_how_to_turn_it_on() {
        let d = diagnose(&facts(
            KvmDevice::Usable,
            Some(VirtExtension::Svm),
            Some("0"),
            "QEMU emulator version 10.0.2",
        ));
        let nested = d
            .checks
            .iter()
            .find(|c| c.what.starts_with("nested"))
            .expect("nested check");
        assert_eq!(nested.status, Status::Optional);
        assert!(nested
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("options kvm_amd nested=1")));
    }

    #[test]
    fn old_qemu_and_missing_files_make_the_host_not_ready() {
        let mut f = facts(
            KvmDevice::Missing,
            None,
            None,
            "QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7)",
        );
        let d = diagnose(&f);
        assert!(!d.ready());
        assert!(d.to_string().contains("bookworm-backports"));
        f.qemu_version = Some("QEMU emulator version 10.0.2".into());
        f.files = vec![(system::OVMF_CODE, false)];
        let d = diagnose(&f);
        assert!(!d.ready());
        assert!(d.to_string().contains("install the Debian package ovmf"));
    }
}
