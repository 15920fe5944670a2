//! Which accelerator QEMU uses: TCG (always works, emulates SVM) or KVM
//! (needs nested virtualization on the host).
//!
//! Detection is split into a probe that reads the host ([`HostFacts::probe`])
//! and a pure decision over what it read ([`HostFacts::kvm_readiness`],
//! [`resolve`]), so every branch is unit-tested. `flotilla doctor` will print
//! the same facts.

use std::fmt;
use std::path::Path;

/// What the user asked for (`--accel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccelRequest {
    /// QEMU's TCG: emulated SVM with NPT.
    #[default]
    Tcg,
    /// KVM with `-cpu host`; fails with the reason if the host cannot.
    Kvm,
    /// KVM when it can run Flotilla here, else TCG.
    Auto,
}

/// The accelerator a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// `-accel tcg -cpu max`.
    Tcg,
    /// `-accel kvm -cpu host`.
    Kvm,
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        })
    }
}

/// The CPU vendor's virtualization extension, as /proc/cpuinfo flags it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtExtension {
    /// Intel VT-x (`vmx`), KVM module `kvm_intel`.
    Vmx,
    /// AMD-V (`svm`), KVM module `kvm_amd`.
    Svm,
}

impl VirtExtension {
    /// The KVM module for this extension.
    pub const fn kvm_module(self) -> &'static str {
        match self {
            VirtExtension::Vmx => "kvm_intel",
            VirtExtension::Svm => "kvm_amd",
        }
    }

    /// The sysfs file that says whether the module allows nested guests.
    pub fn nested_parameter(self) -> String {
        format!("/sys/module/{}/parameters/nested", self.kvm_module())
    }
}

/// State of `/dev/kvm` for this user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvmDevice {
    /// Opened read-write.
    Usable,
    /// Does not exist.
    Missing,
    /// Exists but cannot be opened (the OS error text).
    Inaccessible(String),
}

/// What the host tells about virtualization, read once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// `/dev/kvm`.
    pub kvm_device: KvmDevice,
    /// The `vmx` / `svm` flag in /proc/cpuinfo, if any.
    pub extension: Option<VirtExtension>,
    /// Contents of the KVM module's `nested` parameter (trimmed), if readable.
    pub nested: Option<String>,
}

/// Why KVM cannot run Flotilla on this host.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--accel kvm is not possible here: {reason}")]
pub struct KvmUnavailable {
    /// One sentence: what is missing and how to fix it.
    pub reason: String,
}

impl HostFacts {
    /// Reads `/dev/kvm`, `/proc/cpuinfo` and the KVM module's `nested` parameter.
    pub fn probe() -> Self {
        let kvm_device = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
        {
            Ok(_) => KvmDevice::Usable,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KvmDevice::Missing,
            Err(e) => KvmDevice::Inaccessible(e.to_string()),
        };
        let extension = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| extension_from_cpuinfo(&text));
        let nested = extension.and_then(|ext| {
            std::fs::read_to_string(Path::new(&ext.nested_parameter()))
                .ok()
                .map(|s| s.trim().to_string())
        });
        HostFacts {
            kvm_device,
            extension,
            nested,
        }
    }

    /// `Ok` when KVM can host Flotilla (which needs SVM or VMX inside the
    /// guest), else the reason it cannot.
    pub fn kvm_readiness(&self) -> Result<VirtExtension, KvmUnavailable> {
        let fail = |reason: String| Err(KvmUnavailable { reason });
        match &self.kvm_device {
            KvmDevice::Usable => {}
            KvmDevice::Missing => {
                return fail(
                    "/dev/kvm does not exist (load kvm_intel or kvm_amd, or enable \
                     virtualization in the firmware)"
                        .into(),
                )
            }
            KvmDevice::Inaccessible(err) => {
                return fail(format!(
                    "/dev/kvm cannot be opened ({err}); add yourself to the kvm group"
                ))
            }
        }
        let Some(ext) = self.extension else {
            return fail(
                "the CPU flags in /proc/cpuinfo show neither vmx nor svm, so KVM cannot \
                 give guests virtualization (is this machine itself a VM without nesting?)"
                    .into(),
            );
        };
        match self.nested.as_deref() {
            Some("Y" | "y" | "1") => Ok(ext),
            Some(other) => fail(format!(
                "nested virtualization is off ({} is {other}); enable it with \
                 `options {} nested=1` (see README, \"Nested KVM\")",
                ext.nested_parameter(),
                ext.kvm_module()
            )),
            None => fail(format!(
                "{} cannot be read (is the {} module loaded?)",
                ext.nested_parameter(),
                ext.kvm_module()
            )),
        }
    }
}

/// The first virtualization flag on a `flags` line of /proc/cpuinfo.
pub fn extension_from_cpuinfo(cpuinfo: &str) -> Option<VirtExtension> {
    cpuinfo
        .lines()
        .filter(|line| line.starts_with("flags"))
        .filter_map(|line| line.split_once(':').map(|(_, flags)| flags))
        .find_map(|flags| {
            flags.split_ascii_whitespace().find_map(|flag| match flag {
                "vmx" => Some(VirtExtension::Vmx),
                "svm" => Some(VirtExtension::Svm),
                _ => None,
            })
        })
}

/// Picks the accelerator for a request on a host.
pub fn resolve(request: AccelRequest, host: &HostFacts) -> Result<Accel, KvmUnavailable> {
    match request {
        AccelRequest::Tcg => Ok(Accel::Tcg),
        AccelRequest::Kvm => host.kvm_readiness().map(|_| Accel::Kvm),
        AccelRequest::Auto => Ok(if host.kvm_readiness().is_ok() {
            Accel::Kvm
        } else {
            Accel::Tcg
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(device: KvmDevice, ext: Option<VirtExtension>, nested: Option<&str>) -> HostFacts {
        HostFacts {
            kvm_device: device,
            extension: ext,
            nested: nested.map(str::to_string),
        }
    }

    #[test]
    fn reads_the_extension_flag() {
        let intel = "processor : 0\nflags\t\t: fpu vme de vmx sse\n";
        let amd = "flags : fpu svm lm\n";
        let none = "flags : fpu hypervisor lm\nvmx flags : ept\n";
        assert_eq!(extension_from_cpuinfo(intel), Some(VirtExtension::Vmx));
        assert_eq!(extension_from_cpuinfo(amd), Some(VirtExtension::Svm));
        assert_eq!(extension_from_cpuinfo(none), None);
        assert_eq!(extension_from_cpuinfo(""), None);
    }

    #[test]
    fn kvm_needs_device_flag_and_nesting() {
        let ready = host(KvmDevice::Usable, Some(VirtExtension::Svm), Some("1"));
        assert_eq!(ready.kvm_readiness(), Ok(VirtExtension::Svm));
        let intel = host(KvmDevice::Usable, Some(VirtExtension::Vmx), Some("Y"));
        assert_eq!(resolve(AccelRequest::Kvm, &intel), Ok(Accel::Kvm));
        assert_eq!(resolve(AccelRequest::Auto, &intel), Ok(Accel::Kvm));
        assert_eq!(resolve(AccelRequest::Tcg, &intel), Ok(Accel::Tcg));
    }

    #[test]
    fn each_missing_piece_is_explained() {
        let cases = [
            (
                host(KvmDevice::Missing, None, None),
                "/dev/kvm does not exist",
            ),
            (
                host(
                    KvmDevice::Inaccessible("Permission denied".into()),
                    None,
                    None,
                ),
                "kvm group",
            ),
            (host(KvmDevice::Usable, None, None), "neither vmx nor svm"),
            (
                host(KvmDevice::Usable, Some(VirtExtension::Vmx), Some("N")),
                "/sys/module/kvm_intel/parameters/nested is N",
            ),
            (
                host(KvmDevice::Usable, Some(VirtExtension::Svm), Some("0")),
                "options kvm_amd nested=1",
            ),
            (
                host(KvmDevice::Usable, Some(VirtExtension::Svm), None),
                "cannot be read",
            ),
        ];
        for (facts, expected) in cases {
            let err = resolve(AccelRequest::Kvm, &facts).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(expected), "{msg:?} lacks {expected:?}");
            assert!(!msg.contains('\n'));
            assert_eq!(resolve(AccelRequest::Auto, &facts), Ok(Accel::Tcg));
        }
    }
}
