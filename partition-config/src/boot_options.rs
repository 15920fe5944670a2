//! The partition keys that shape how a kernel given by path boots:
//! `compat` (the platform it gets), `cmdline` (its command line) and
//! `initrd` (a file handed to it as PVH module 0). `docs/layout.md`,
//! "Stock kernels", is the contract.

use std::path::Path;

use crate::catalog::BUILTIN_KERNEL;
use crate::diagnostics::Diagnostic;
use crate::front::{suggest, Field, RawPartition};
use crate::layout::{Compat, Initrd, Kernel};
use crate::limits::{is_valid_cmdline, CMDLINE_MAX_LEN, KERNEL_PATH_MAX_LEN};
use crate::validate::in_partition;

/// What the boot-option checks accepted of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BootOptions {
    pub compat: Compat,
    pub cmdline: String,
    pub initrd: Option<Initrd>,
}

/// Checks `compat`, `cmdline` and `initrd` of `p`, whose kernel (when it
/// passed its own checks) is `kernel`.
pub(crate) fn check_boot_options(
    p: &RawPartition,
    kernel: Option<&Kernel>,
    base_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> BootOptions {
    let compat = check_compat(p, diags);
    let cmdline = check_cmdline(p, diags);
    let initrd = check_initrd(p, base_dir, diags);
    if matches!(kernel, Some(Kernel::BuiltIn)) {
        let given = [
            ("compat", p.compat.given()),
            ("cmdline", p.cmdline.given()),
            ("initrd", p.initrd.given()),
        ];
        for (key, value) in given {
            let Some(value) = value else { continue };
            diags.push(in_partition(
                Diagnostic::new(
                    "builtin-kernel-option",
                    format!("`{key}` is for a kernel given by path, not the built-in kernel"),
                )
                .at(
                    value.span.clone(),
                    format!("the built-in \"{BUILTIN_KERNEL}\" takes no `{key}`"),
                )
                .help(
                    "remove it, or give the partition a `kernel` by path (a PVH ELF or a bzImage)",
                )
                .note(
                    "the built-in kernel gets its workload and arguments from the Flotilla block",
                ),
                value,
                p,
            ));
        }
    }
    BootOptions {
        compat,
        cmdline,
        initrd,
    }
}

fn check_compat(p: &RawPartition, diags: &mut Vec<Diagnostic>) -> Compat {
    let Field::Given(c) = &p.compat else {
        return Compat::None;
    };
    if let Some(compat) = Compat::from_name(&c.value) {
        return compat;
    }
    let names: Vec<&str> = Compat::ALL.iter().map(|c| c.as_str()).collect();
    let d = Diagnostic::new(
        "bad-compat",
        format!("unknown compat platform `{}`", c.value),
    )
    .at(
        c.span.clone(),
        "expected \"linux\" (or \"none\", the default)",
    );
    let d = match suggest(&c.value, names.iter().copied()) {
        Some(m) => d.help(format!("did you mean \"{m}\"?")),
        None => {
            d.help("use \"linux\" for a stock Linux kernel (docs/linux.md), or leave `compat` out")
        }
    };
    diags.push(in_partition(d, c, p));
    Compat::None
}

fn check_cmdline(p: &RawPartition, diags: &mut Vec<Diagnostic>) -> String {
    let Field::Given(c) = &p.cmdline else {
        return String::new();
    };
    if is_valid_cmdline(&c.value) {
        return c.value.clone();
    }
    let label = if c.value.len() > CMDLINE_MAX_LEN {
        format!("{} bytes, at most {CMDLINE_MAX_LEN}", c.value.len())
    } else {
        "a control or non-ASCII character".to_owned()
    };
    diags.push(in_partition(
        Diagnostic::new(
            "bad-cmdline",
            "the command line is too long or not printable ASCII",
        )
        .at(c.span.clone(), label)
        .help(format!(
            "write at most {CMDLINE_MAX_LEN} bytes of printable ASCII on one line (words separated by spaces)"
        ))
        .note("the hypervisor appends its own words (`flotilla-block=...`) to it"),
        c,
        p,
    ));
    String::new()
}

fn check_initrd(p: &RawPartition, base_dir: &Path, diags: &mut Vec<Diagnostic>) -> Option<Initrd> {
    let Field::Given(i) = &p.initrd else {
        return None;
    };
    if i.value.is_empty() || i.value.len() > KERNEL_PATH_MAX_LEN || i.value.contains('\0') {
        diags.push(in_partition(
            Diagnostic::new(
                "bad-initrd",
                "the initrd path is empty, too long or contains NUL",
            )
            .at(i.span.clone(), "not a usable path")
            .help("give the path of an initramfs file, relative to the layout file"),
            i,
            p,
        ));
        return None;
    }
    let path = base_dir.join(&i.value);
    // `metadata` follows symbolic links, as opening the file would.
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Some(Initrd {
            written: i.value.clone(),
            path,
            len: m.len(),
        }),
        Ok(_) => {
            diags.push(in_partition(
                Diagnostic::new(
                    "bad-initrd",
                    format!("initrd `{}` is not a regular file", i.value),
                )
                .at(i.span.clone(), format!("{} is not a file", path.display()))
                .help("give the path of an initramfs file (a cpio archive, possibly compressed)"),
                i,
                p,
            ));
            None
        }
        Err(_) => {
            diags.push(in_partition(
                Diagnostic::new(
                    "initrd-not-found",
                    format!("initrd `{}` not found", i.value),
                )
                .at(i.span.clone(), format!("no file at {}", path.display()))
                .help("build the initramfs first, or fix the path")
                .note("initrd paths are relative to the layout file's directory"),
                i,
                p,
            ));
            None
        }
    }
}
