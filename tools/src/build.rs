//! The workspace on disk and the nested `cargo build` of the bare-metal
//! crates (release, `x86_64-unknown-none`, `--locked`).
//!
//! Cargo is the one that knows how to build; this module only invokes it the
//! same way every time and finds what it produced. It is quiet when the build
//! succeeds and returns cargo's whole stderr when it fails.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The target triple of every bare-metal crate.
pub const BARE_METAL_TARGET: &str = "x86_64-unknown-none";

/// A bare-metal binary crate of the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BareMetalCrate {
    /// Cargo package name (`-p`).
    pub package: &'static str,
    /// Name of the binary (the ELF file name under the target directory).
    pub binary: &'static str,
}

/// The hypervisor: an ELF with a PVH note and a multiboot2 header.
pub const HYPERVISOR: BareMetalCrate = BareMetalCrate {
    package: "hypervisor",
    binary: "flotilla-hypervisor",
};

/// The built-in guest kernel (`kernel = "guest-kernel"` in layouts): a PVH ELF.
pub const GUEST_KERNEL: BareMetalCrate = BareMetalCrate {
    package: "guest-kernel",
    binary: "guest-kernel",
};

/// The bare-metal images a layout run boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// The hypervisor ELF.
    pub hypervisor: PathBuf,
    /// The built-in guest kernel ELF.
    pub guest_kernel: PathBuf,
}

/// Where the workspace and its build outputs are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workspace {
    /// The directory holding the workspace `Cargo.toml`.
    pub root: PathBuf,
    /// Cargo's target directory (honours `CARGO_TARGET_DIR`).
    pub target_dir: PathBuf,
}

impl Workspace {
    /// The workspace this crate was built from, with the target directory
    /// cargo would use from here (`CARGO_TARGET_DIR` if set, relative paths
    /// taken from the current directory as cargo does).
    pub fn locate() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => {
                let dir = PathBuf::from(dir);
                if dir.is_absolute() {
                    dir
                } else {
                    std::env::current_dir()
                        .map(|cwd| cwd.join(&dir))
                        .unwrap_or(dir)
                }
            }
            _ => root.join("target"),
        };
        Workspace { root, target_dir }
    }

    /// Path of a bare-metal crate's release ELF.
    pub fn artifact(&self, krate: BareMetalCrate) -> PathBuf {
        self.target_dir
            .join(BARE_METAL_TARGET)
            .join("release")
            .join(krate.binary)
    }

    /// A directory under the target directory for Flotilla's own outputs
    /// (ISOs and the like), created if needed.
    pub fn scratch_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.target_dir.join("flotilla").join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(dir)
    }
}

/// The cargo program to run: `$CARGO` (set when running under cargo), else
/// `cargo` from `PATH`.
pub fn cargo_program() -> OsString {
    std::env::var_os("CARGO")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| OsString::from("cargo"))
}

/// The arguments of the `cargo build` that produces `crates`.
pub fn cargo_build_args(crates: &[BareMetalCrate]) -> Vec<String> {
    let mut args: Vec<String> = [
        "build",
        "--release",
        "--locked",
        "--target",
        BARE_METAL_TARGET,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for krate in crates {
        args.push("-p".into());
        args.push(krate.package.into());
    }
    args
}

/// Builds `crates` in release mode for the bare-metal target and returns the
/// path of each one's ELF, in the same order.
pub fn build(workspace: &Workspace, crates: &[BareMetalCrate]) -> Result<Vec<PathBuf>> {
    let args = cargo_build_args(crates);
    let cargo = cargo_program();
    let output = Command::new(&cargo)
        .args(&args)
        .current_dir(&workspace.root)
        .env("CARGO_TARGET_DIR", &workspace.target_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("running {}", cargo.to_string_lossy()), e))?;
    if !output.status.success() {
        let names: Vec<&str> = crates.iter().map(|k| k.package).collect();
        return Err(Error::Build {
            what: names.join(", "),
            command: format!("cargo {}", args.join(" ")),
            output: String::from_utf8_lossy(&output.stderr)
                .trim_end()
                .to_string(),
        });
    }
    crates
        .iter()
        .map(|&krate| {
            let path = workspace.artifact(krate);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::NoArtifact(path))
            }
        })
        .collect()
}

/// Builds the hypervisor and returns the path of its ELF.
pub fn build_hypervisor(workspace: &Workspace) -> Result<PathBuf> {
    let mut paths = build(workspace, &[HYPERVISOR])?;
    paths
        .pop()
        .ok_or_else(|| Error::NoArtifact(workspace.artifact(HYPERVISOR)))
}

/// Builds the hypervisor and the built-in guest kernel in one cargo call.
pub fn build_images(workspace: &Workspace) -> Result<Images> {
    let mut paths = build(workspace, &[HYPERVISOR, GUEST_KERNEL])?.into_iter();
    match (paths.next(), paths.next()) {
        (Some(hypervisor), Some(guest_kernel)) => Ok(Images {
            hypervisor,
            guest_kernel,
        }),
        _ => Err(Error::NoArtifact(workspace.artifact(GUEST_KERNEL))),
    }
}

/// The target triple of the Linux userspace program (`linux-user/`).
pub const LINUX_USER_TARGET: &str = "x86_64-unknown-linux-musl";

/// The package and binary of the Linux userspace program.
pub const LINUX_USER: BareMetalCrate = BareMetalCrate {
    package: "linux-user",
    binary: "flotilla-linux",
};

/// The arguments of the `cargo build` of the Linux userspace program:
/// release, static (musl), `--locked`.
pub fn linux_user_build_args() -> Vec<String> {
    [
        "build",
        "--release",
        "--locked",
        "--target",
        LINUX_USER_TARGET,
        "-p",
        LINUX_USER.package,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Builds `flotilla-linux` for `x86_64-unknown-linux-musl` (a static
/// executable, symbols stripped so the initramfs stays small) and returns
/// its path. Needs the musl target (`ci/setup.sh` adds it).
pub fn build_linux_user(workspace: &Workspace) -> Result<PathBuf> {
    let args = linux_user_build_args();
    let cargo = cargo_program();
    let output = Command::new(&cargo)
        .args(&args)
        .current_dir(&workspace.root)
        .env("CARGO_TARGET_DIR", &workspace.target_dir)
        .env(
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS",
            "-C strip=symbols",
        )
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("running {}", cargo.to_string_lossy()), e))?;
    if !output.status.success() {
        let mut out = String::from_utf8_lossy(&output.stderr)
            .trim_end()
            .to_string();
        if out.contains("target may not be installed") {
            out.push_str("\n(add the target with `rustup target add x86_64-unknown-linux-musl`, or run `bash ci/setup.sh`)");
        }
        return Err(Error::Build {
            what: LINUX_USER.package.into(),
            command: format!("cargo {}", args.join(" ")),
            output: out,
        });
    }
    let path = workspace
        .target_dir
        .join(LINUX_USER_TARGET)
        .join("release")
        .join(LINUX_USER.binary);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::NoArtifact(path))
    }
}

/// The linker arguments of a workload crate's binary, as `guest-kernel`'s
/// build script gives them: the runtime's linker script (which
/// `flotilla-rt`'s build script puts on the library path), no dynamic
/// linker, 4 KiB pages. With `-C relocation-model=static` (what the
/// workspace's `.cargo/config.toml` sets for the bare-metal target), these
/// are the `rustflags` of a workload crate's build, so the crate needs no
/// build script of its own. Link arguments only reach the final link, so
/// its libraries are unaffected.
pub const WORKLOAD_RUSTFLAGS: &[&str] = &[
    "-C",
    "relocation-model=static",
    "-C",
    "link-arg=-Tflotilla-rt.ld",
    "-C",
    "link-arg=--no-dynamic-linker",
    "-C",
    "link-arg=-zmax-page-size=0x1000",
];

/// The arguments of the `cargo build` of the workload crate whose manifest
/// is `manifest`: release, bare metal, and artifacts as JSON on stdout
/// (diagnostics rendered on stderr, as a plain `cargo build` shows them).
/// Not `--locked`: the crate is the user's, free to add dependencies.
pub fn workload_build_args(manifest: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["build", "--release", "--target", BARE_METAL_TARGET]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push("--message-format=json-render-diagnostics".into());
    args.push("--manifest-path".into());
    args.push(manifest.display().to_string());
    args
}

/// Workload crates built by this process: crate directory → ELF, so the
/// bundle builder finds what layout validation built.
static BUILT_WORKLOADS: std::sync::Mutex<Vec<(PathBuf, PathBuf)>> =
    std::sync::Mutex::new(Vec::new());

/// Builds the workload crate in `dir` (release, `x86_64-unknown-none`, the
/// workspace's pinned toolchain, [`WORKLOAD_RUSTFLAGS`]) and returns its
/// ELF. Its target directory is `target/flotilla/workloads` of this
/// workspace, shared by every workload crate. A crate already built by this
/// process is not built again.
///
/// # Errors
/// [`Error::Build`] with cargo's stderr when the build fails;
/// [`Error::NoArtifact`] when it produced no binary, or more than one.
pub fn build_workload(workspace: &Workspace, dir: &Path) -> Result<PathBuf> {
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if let Some((_, elf)) = BUILT_WORKLOADS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|(d, _)| *d == key)
    {
        return Ok(elf.clone());
    }
    let manifest = key.join("Cargo.toml");
    seed_lock(workspace, &key)?;
    let args = workload_build_args(&manifest);
    let cargo = cargo_program();
    let output = Command::new(&cargo)
        .args(&args)
        // From the workspace root, so rustup picks its pinned toolchain
        // (rust-toolchain.toml) whatever directory the crate is in.
        .current_dir(&workspace.root)
        .env(
            "CARGO_TARGET_DIR",
            workspace.target_dir.join("flotilla").join("workloads"),
        )
        .env("CARGO_ENCODED_RUSTFLAGS", WORKLOAD_RUSTFLAGS.join("\x1f"))
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("running {}", cargo.to_string_lossy()), e))?;
    let command = format!("cargo {}", args.join(" "));
    if !output.status.success() {
        return Err(Error::Build {
            what: format!("workload crate {}", key.display()),
            command,
            output: String::from_utf8_lossy(&output.stderr)
                .trim_end()
                .to_string(),
        });
    }
    let elves = executables(&String::from_utf8_lossy(&output.stdout), &manifest);
    match elves.as_slice() {
        [elf] => {
            BUILT_WORKLOADS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((key, elf.clone()));
            Ok(elf.clone())
        }
        _ => Err(Error::Build {
            what: format!("workload crate {}", key.display()),
            command,
            output: format!(
                "the crate built {} binaries; a workload crate has exactly one",
                elves.len()
            ),
        }),
    }
}

/// A crate without a `Cargo.lock` gets a copy of the workspace's: its
/// first build then resolves to the versions Flotilla is built and tested
/// with (cargo drops the entries it does not need), from crates already
/// downloaded, so it works offline.
fn seed_lock(workspace: &Workspace, dir: &Path) -> Result<()> {
    let lock = dir.join("Cargo.lock");
    if lock.exists() {
        return Ok(());
    }
    std::fs::copy(workspace.root.join("Cargo.lock"), &lock)
        .map(|_| ())
        .map_err(|e| Error::io(format!("creating {}", lock.display()), e))
}

/// The executables cargo's JSON messages (`stdout`) say it built for the
/// package of `manifest`.
fn executables(stdout: &str, manifest: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let ours = msg["manifest_path"]
            .as_str()
            .is_some_and(|m| Path::new(m) == manifest);
        if let (true, Some(exe)) = (ours, msg["executable"].as_str()) {
            out.push(PathBuf::from(exe));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_build_is_release_bare_metal() {
        let args = workload_build_args(Path::new("/w/sieve/Cargo.toml"));
        assert_eq!(
            args,
            [
                "build",
                "--release",
                "--target",
                "x86_64-unknown-none",
                "--message-format=json-render-diagnostics",
                "--manifest-path",
                "/w/sieve/Cargo.toml"
            ]
        );
    }

    #[test]
    fn executables_are_the_crates_own_binaries() {
        let out = concat!(
            r#"{"reason":"compiler-artifact","manifest_path":"/r/flotilla-rt/Cargo.toml","executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","manifest_path":"/w/s/Cargo.toml","executable":"/t/s"}"#,
            "\nnot json\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            executables(out, Path::new("/w/s/Cargo.toml")),
            [PathBuf::from("/t/s")]
        );
    }

    #[test]
    fn build_command_is_release_locked_bare_metal() {
        let args = cargo_build_args(&[HYPERVISOR]);
        assert_eq!(
            args,
            [
                "build",
                "--release",
                "--locked",
                "--target",
                "x86_64-unknown-none",
                "-p",
                "hypervisor"
            ]
        );
    }

    #[test]
    fn the_linux_program_is_built_static_and_locked() {
        assert_eq!(
            linux_user_build_args(),
            [
                "build",
                "--release",
                "--locked",
                "--target",
                "x86_64-unknown-linux-musl",
                "-p",
                "linux-user"
            ]
        );
    }

    #[test]
    fn images_are_built_together() {
        let args = cargo_build_args(&[HYPERVISOR, GUEST_KERNEL]);
        assert!(args.ends_with(&[
            "-p".to_string(),
            "hypervisor".to_string(),
            "-p".to_string(),
            "guest-kernel".to_string()
        ]));
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let ws = Workspace::locate();
        let manifest = std::fs::read_to_string(ws.root.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
        assert!(ws
            .artifact(HYPERVISOR)
            .ends_with("x86_64-unknown-none/release/flotilla-hypervisor"));
    }
}
