//! The initramfs of a Linux partition (`docs/linux.md`): a cpio archive in
//! the "newc" format the kernel unpacks (Linux's
//! `Documentation/driver-api/early-userspace/buffer-format.rst`), holding a
//! static busybox, the `flotilla-linux` program (`linux-user/`) and an
//! `/init` script that mounts `/proc`, `/sys` and `/dev`, runs the program
//! and powers the partition off.
//!
//! Also where the stock kernel and busybox that `ci/setup.sh` fetched are
//! found ([`LinuxAssets`]). Everything here is pure and host-tested except
//! reading those files.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The newc magic: ASCII hexadecimal header fields, no checksum.
const NEWC_MAGIC: &[u8; 6] = b"070701";
/// The name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// `st_mode` file-type bits.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// Why an entry could not go into an archive.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CpioError {
    /// The path is empty, absolute, has an empty, `.` or `..` component,
    /// or a NUL byte.
    #[error("cpio: bad path {0:?} (relative, no empty, `.` or `..` components, no NUL)")]
    BadPath(String),
    /// The data does not fit the format's 32-bit size field.
    #[error("cpio: {path} is {len} bytes, the format holds at most 4 GiB - 1")]
    TooLarge {
        /// The entry.
        path: String,
        /// Its length.
        len: usize,
    },
    /// The same path twice.
    #[error("cpio: {0} is already in the archive")]
    Duplicate(String),
}

/// A newc cpio archive being written, in memory.
#[derive(Debug, Default)]
pub struct Cpio {
    out: Vec<u8>,
    paths: Vec<String>,
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn check_path(path: &str) -> Result<(), CpioError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        Err(CpioError::BadPath(path.to_string()))
    } else {
        Ok(())
    }
}

impl Cpio {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// One entry: header (inode = its position from 1, owner root, mtime
    /// 0 so archives are reproducible), name, data.
    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        data: &[u8],
        rdev: (u32, u32),
    ) -> Result<(), CpioError> {
        if path != TRAILER {
            check_path(path)?;
            if self.paths.iter().any(|p| p == path) {
                return Err(CpioError::Duplicate(path.to_string()));
            }
        }
        let too_large = || CpioError::TooLarge {
            path: path.to_string(),
            len: data.len(),
        };
        let size = u32::try_from(data.len()).map_err(|_| too_large())?;
        let name_size = u32::try_from(path.len() + 1).map_err(|_| too_large())?;
        let ino = if path == TRAILER {
            0
        } else {
            u32::try_from(self.paths.len() + 1).map_err(|_| too_large())?
        };
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, name_size, 0,
        ];
        self.out.extend_from_slice(NEWC_MAGIC);
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(path.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
        if path != TRAILER {
            self.paths.push(path.to_string());
        }
        Ok(())
    }

    /// A directory (`perm`: permission bits, e.g. `0o755`).
    pub fn dir(&mut self, path: &str, perm: u32) -> Result<(), CpioError> {
        self.entry(path, S_IFDIR | (perm & 0o7777), &[], (0, 0))
    }

    /// A regular file.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> Result<(), CpioError> {
        self.entry(path, S_IFREG | (perm & 0o7777), data, (0, 0))
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), CpioError> {
        self.entry(path, S_IFLNK | 0o777, target.as_bytes(), (0, 0))
    }

    /// A character device node.
    pub fn char_dev(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        self.entry(path, S_IFCHR | (perm & 0o7777), &[], (major, minor))
    }

    /// The archive: the entries, the trailer, zero-padded to 512 bytes.
    pub fn finish(mut self) -> Vec<u8> {
        // The trailer's path is fixed and short: it cannot fail.
        let _ = self.entry(TRAILER, 0, &[], (0, 0));
        while !self.out.len().is_multiple_of(512) {
            self.out.push(0);
        }
        self.out
    }
}

/// Where the userspace program lives in the initramfs.
pub const PROGRAM_PATH: &str = "bin/flotilla-linux";
/// The line `/init` prints first: userspace is up, after how long by the
/// kernel's own clock (`/proc/uptime`, from the kernel's start), and which
/// kernel: `flotilla-init: userspace up after 2.31s (Linux 6.1.0-57-amd64)`
/// (the boot-time mark of `tests/tests/linux.rs`).
pub const USERSPACE_UP: &str = "flotilla-init: userspace up";
/// The line `/init` prints before powering off, after the program's exit
/// status: `flotilla-init: flotilla-linux exited with <status>`.
pub const PROGRAM_EXITED: &str = "flotilla-init: flotilla-linux exited with";

/// The command-line word that makes `/init` idle for that many seconds
/// before powering off (`flotilla.idle=5`): the idle phase whose VM exits
/// `tests/tests/linux.rs` counts.
pub const IDLE_PARAM: &str = "flotilla.idle";
/// The line `/init` prints before idling: `flotilla-init: idling for <n> s`.
/// Then it sleeps, holding no terminal open, and prints [`IDLED`].
pub const IDLING: &str = "flotilla-init: idling for";
/// The line `/init` prints after idling.
pub const IDLED: &str = "flotilla-init: idled";

/// The `/init` script: mount the pseudo file systems (`/dev` is devtmpfs,
/// so `/dev/mem` is there), read nothing (standard input `/dev/null`) and
/// send its and the program's output to the kernel log (`/dev/kmsg`,
/// which the console prints at once, and no terminal is held open: Linux's
/// serial driver polls an interrupt-less UART while its tty is open), say
/// userspace is up ([`USERSPACE_UP`]), run the program, report its exit
/// status, idle if the command line says [`IDLE_PARAM`], power off (ACPI
/// S5: exit code 0 of the partition). Without a writable `/dev/kmsg` the
/// output goes to `/dev/console`. `busybox poweroff -f` goes straight to
/// the kernel's power-off, with no init system to stop.
pub fn init_script() -> String {
    format!(
        r#"#!/bin/busybox sh
# /init of a Flotilla Linux partition (tools/src/initramfs.rs, docs/linux.md).
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
# Lines go to the kernel log, which the console prints at once; no
# terminal stays open (a serial tty without interrupts is polled by a
# kernel timer while open). Every line shows (console log level 5 lets the
# default level 4 through, even with `quiet`), none is rate-limited.
out=/dev/console
if [ -w /dev/kmsg ]; then
  echo on > /proc/sys/kernel/printk_devkmsg
  echo 5 > /proc/sys/kernel/printk
  out=/dev/kmsg
fi
exec 0</dev/null 1>"$out" 2>&1
read -r uptime idletime < /proc/uptime
echo "{USERSPACE_UP} after ${{uptime}}s (Linux $(/bin/busybox uname -r))"
/{PROGRAM_PATH}
echo "{PROGRAM_EXITED} $?"
for word in $(/bin/busybox cat /proc/cmdline); do
  case "$word" in {IDLE_PARAM}=*) idle_secs="${{word#{IDLE_PARAM}=}}" ;; esac
done
if [ -n "$idle_secs" ]; then
  echo "{IDLING} $idle_secs s"
  /bin/busybox sleep "$idle_secs"
  echo "{IDLED}"
fi
/bin/busybox poweroff -f
"#
    )
}

/// The initramfs: `/init` ([`init_script`]), `busybox` (a static busybox)
/// at `/bin/busybox` with `/bin/sh` linked to it, `program` (the static
/// `flotilla-linux`) at [`PROGRAM_PATH`], `/dev/console` (the kernel opens
/// it for `/init` before anything is mounted) and the mount points.
pub fn build(busybox: &[u8], program: &[u8]) -> Result<Vec<u8>, CpioError> {
    let mut cpio = Cpio::new();
    for dir in ["bin", "dev", "proc", "sys", "tmp"] {
        cpio.dir(dir, 0o755)?;
    }
    cpio.char_dev("dev/console", 0o600, 5, 1)?;
    cpio.file("bin/busybox", 0o755, busybox)?;
    cpio.symlink("bin/sh", "busybox")?;
    cpio.file(PROGRAM_PATH, 0o755, program)?;
    cpio.file("init", 0o755, init_script().as_bytes())?;
    Ok(cpio.finish())
}

/// The stock kernel and static busybox `ci/setup.sh` fetched with
/// `apt-get download`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxAssets {
    /// The cache directory.
    pub dir: PathBuf,
    /// Debian's bzImage (`/boot/vmlinuz-<version>` of the package).
    pub vmlinuz: PathBuf,
    /// Debian's static busybox.
    pub busybox: PathBuf,
    /// The kernel release (`6.1.0-57-amd64`).
    pub kernel_version: String,
    /// The package and its version (`linux-image-6.1.0-57-amd64 6.1.192-3`).
    pub package: String,
}

/// The cache directory `ci/setup.sh` fills: `FLOTILLA_LINUX_DIR`, else
/// `$XDG_CACHE_HOME/flotilla/linux`, else `$HOME/.cache/flotilla/linux`.
/// (Arguments instead of the environment, for the tests.)
pub fn assets_dir(
    linux_dir: Option<&str>,
    xdg_cache: Option<&str>,
    home: Option<&str>,
) -> Option<PathBuf> {
    let set = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(PathBuf::from);
    set(linux_dir)
        .or_else(|| set(xdg_cache).map(|d| d.join("flotilla").join("linux")))
        .or_else(|| set(home).map(|d| d.join(".cache").join("flotilla").join("linux")))
}

impl LinuxAssets {
    /// The assets in `dir`, all present.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let need = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::Invalid(format!(
                    "{} is missing: run `bash ci/setup.sh`, which fetches Debian's kernel and \
                     busybox-static into {} (FLOTILLA_LINUX_DIR)",
                    path.display(),
                    dir.display()
                )))
            }
        };
        let read = |name: &str| -> Result<String> {
            let path = need(name)?;
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_string())
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))
        };
        Ok(LinuxAssets {
            vmlinuz: need("vmlinuz")?,
            busybox: need("busybox")?,
            kernel_version: read("kernel-version")?,
            package: read("kernel-package")?,
            dir: dir.to_path_buf(),
        })
    }

    /// The assets where `ci/setup.sh` put them ([`assets_dir`] from the
    /// environment).
    pub fn locate() -> Result<Self> {
        let var = |k: &str| std::env::var(k).ok();
        let dir = assets_dir(
            var("FLOTILLA_LINUX_DIR").as_deref(),
            var("XDG_CACHE_HOME").as_deref(),
            var("HOME").as_deref(),
        )
        .ok_or_else(|| {
            Error::Invalid(
                "no FLOTILLA_LINUX_DIR and no HOME: where did ci/setup.sh put Linux?".into(),
            )
        })?;
        Self::in_dir(&dir)
    }
}

/// Builds the initramfs from `busybox` and `program` (files) into `out`.
pub fn write(busybox: &Path, program: &Path, out: &Path) -> Result<()> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| Error::io(format!("reading {}", p.display()), e));
    let archive =
        build(&read(busybox)?, &read(program)?).map_err(|e| Error::Invalid(e.to_string()))?;
    std::fs::write(out, archive).map_err(|e| Error::io(format!("writing {}", out.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of a newc header: the magic and 13 eight-digit fields.
    const NEWC_HEADER: usize = 6 + 13 * 8;

    /// One entry read back: (name, mode, rdev major, rdev minor, data).
    type Entry = (String, u32, u32, u32, Vec<u8>);

    /// A newc reader written for the test, as the kernel reads archives:
    /// header, name padded to 4, data padded to 4, until the trailer.
    fn parse(mut a: &[u8]) -> Vec<Entry> {
        let whole = a.len();
        let mut out = Vec::new();
        loop {
            assert_eq!(&a[..6], NEWC_MAGIC, "magic at {}", whole - a.len());
            let field = |i: usize| {
                let s = std::str::from_utf8(&a[6 + i * 8..14 + i * 8]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, size, rmaj, rmin, namesize) =
                (field(1), field(6), field(9), field(10), field(11));
            let name_end = NEWC_HEADER + namesize as usize;
            assert_eq!(a[name_end - 1], 0, "NUL-terminated name");
            let name = String::from_utf8(a[NEWC_HEADER..name_end - 1].to_vec()).unwrap();
            let data_start = name_end.next_multiple_of(4);
            let data_end = data_start + size as usize;
            let data = a[data_start..data_end].to_vec();
            a = &a[data_end.next_multiple_of(4)..];
            if name == TRAILER {
                assert!(a.iter().all(|&b| b == 0), "only padding after the trailer");
                return out;
            }
            out.push((name, mode, rmaj, rmin, data));
        }
    }

    #[test]
    fn entries_read_back_with_their_kind_and_bytes() {
        let mut c = Cpio::new();
        c.dir("bin", 0o755).unwrap();
        c.file("bin/hello", 0o644, b"hello, world").unwrap();
        c.symlink("bin/sh", "busybox").unwrap();
        c.char_dev("dev/console", 0o600, 5, 1).unwrap();
        c.file("e", 0o600, b"").unwrap();
        let archive = c.finish();
        assert_eq!(archive.len() % 512, 0);
        let entries = parse(&archive);
        assert_eq!(
            entries,
            vec![
                ("bin".into(), 0o040_755, 0, 0, vec![]),
                (
                    "bin/hello".into(),
                    0o100_644,
                    0,
                    0,
                    b"hello, world".to_vec()
                ),
                ("bin/sh".into(), 0o120_777, 0, 0, b"busybox".to_vec()),
                ("dev/console".into(), 0o020_600, 5, 1, vec![]),
                ("e".into(), 0o100_600, 0, 0, vec![]),
            ]
        );
    }

    #[test]
    fn the_header_is_the_documented_layout() {
        let mut c = Cpio::new();
        c.file("ab", 0o755, b"xyz").unwrap();
        let a = c.finish();
        let header = std::str::from_utf8(&a[..NEWC_HEADER]).unwrap();
        // magic, ino 1, mode, uid, gid, nlink 1, mtime 0, size 3, dev 0:0,
        // rdev 0:0, namesize 3 (with the NUL), check 0.
        let expected = [
            "070701", "00000001", "000081ed", "00000000", "00000000", "00000001", "00000000",
            "00000003", "00000000", "00000000", "00000000", "00000000", "00000003", "00000000",
        ]
        .concat();
        assert_eq!(header, expected);
        // Header (110) + "ab\0" = 113, padded to 116; data, padded to 120.
        assert_eq!(&a[110..116], b"ab\0\0\0\0");
        assert_eq!(&a[116..120], b"xyz\0");
        assert_eq!(&a[120..126], NEWC_MAGIC, "the trailer follows");
    }

    #[test]
    fn bad_paths_and_duplicates_are_refused() {
        let mut c = Cpio::new();
        for bad in [
            "", "/abs", "a//b", "a/./b", "../x", "a/..", "trail/", "n\0ul",
        ] {
            assert_eq!(
                c.file(bad, 0o644, b""),
                Err(CpioError::BadPath(bad.into())),
                "{bad:?}"
            );
        }
        c.dir("d", 0o755).unwrap();
        assert_eq!(
            c.file("d", 0o644, b""),
            Err(CpioError::Duplicate("d".into()))
        );
    }

    #[test]
    fn the_initramfs_holds_init_busybox_and_the_program() {
        let archive = build(b"BUSYBOX", b"PROGRAM").unwrap();
        let entries = parse(&archive);
        let get = |name: &str| {
            entries
                .iter()
                .find(|e| e.0 == name)
                .unwrap_or_else(|| panic!("{name} in {entries:?}"))
        };
        assert_eq!(get("bin/busybox").4, b"BUSYBOX");
        assert_eq!(get(PROGRAM_PATH).4, b"PROGRAM");
        assert_eq!(get(PROGRAM_PATH).1, 0o100_755);
        assert_eq!(get("bin/sh").4, b"busybox");
        assert_eq!((get("dev/console").2, get("dev/console").3), (5, 1));
        let init = get("init");
        assert_eq!(init.1, 0o100_755, "executable");
        let script = String::from_utf8(init.4.clone()).unwrap();
        assert!(script.starts_with("#!/bin/busybox sh\n"));
        // Every directory a path lives in comes before it.
        for (i, e) in entries.iter().enumerate() {
            if let Some((parent, _)) = e.0.rsplit_once('/') {
                let p = entries.iter().position(|d| d.0 == parent).unwrap();
                assert!(
                    p < i && entries[p].1 & S_IFDIR != 0,
                    "{} after {parent}",
                    e.0
                );
            }
        }
        // The order of the script: mounts, the mark, the program, its
        // status, power-off.
        let at = |s: &str| {
            script
                .find(s)
                .unwrap_or_else(|| panic!("{s:?} in {script}"))
        };
        assert!(at("mount -t proc") < at("mount -t devtmpfs"));
        assert!(at("mount -t devtmpfs") < at("exec 0</dev/null 1>\"$out\" 2>&1"));
        assert!(at("out=/dev/kmsg") < at(USERSPACE_UP));
        assert!(at(USERSPACE_UP) < at("/bin/flotilla-linux\n"));
        assert!(at("/bin/flotilla-linux\n") < at(&format!("{PROGRAM_EXITED} $?")));
        assert!(at(PROGRAM_EXITED) < at(IDLE_PARAM));
        assert!(at(IDLE_PARAM) < at("sleep \"$idle_secs\""));
        // Nothing reopens the console: the output stays in the kernel log.
        assert_eq!(script.matches("exec ").count(), 1);
        assert!(at("sleep \"$idle_secs\"") < at(IDLED));
        assert!(at(IDLED) < at("poweroff -f"));
    }

    #[test]
    fn the_assets_directory_follows_the_setup_script() {
        assert_eq!(
            assets_dir(Some("/l"), Some("/x"), Some("/h")),
            Some(PathBuf::from("/l"))
        );
        assert_eq!(
            assets_dir(Some(""), Some("/x"), Some("/h")),
            Some(PathBuf::from("/x/flotilla/linux"))
        );
        assert_eq!(
            assets_dir(None, None, Some("/h")),
            Some(PathBuf::from("/h/.cache/flotilla/linux"))
        );
        assert_eq!(assets_dir(None, None, None), None);
    }

    #[test]
    fn missing_assets_say_how_to_fetch_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = LinuxAssets::in_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("vmlinuz is missing: run `bash ci/setup.sh`"),
            "{err}"
        );
        for (name, text) in [
            ("vmlinuz", "MZ"),
            ("busybox", "ELF"),
            ("kernel-version", "6.1.0-57-amd64\n"),
            ("kernel-package", "linux-image-6.1.0-57-amd64 6.1.192-3\n"),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let assets = LinuxAssets::in_dir(dir.path()).unwrap();
        assert_eq!(assets.kernel_version, "6.1.0-57-amd64");
        assert_eq!(assets.package, "linux-image-6.1.0-57-amd64 6.1.192-3");
        assert_eq!(assets.vmlinuz, dir.path().join("vmlinuz"));
    }
}
