#!/usr/bin/env bash
# Installs every system package Flotilla's build and tests need, idempotently.
# Debian 12 (bookworm) or newer / Ubuntu. Run as root (or through sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need=()
have() { command -v "$1" >/dev/null 2>&1; }

# QEMU >= 8 is needed for SVM with NPT under TCG; Debian 12 ships 7.2, so
# take QEMU 10 from bookworm-backports there.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
qemu_from_backports=0
if [ "$codename" = "bookworm" ]; then
  qemu_from_backports=1
  if [ ! -f /etc/apt/sources.list.d/backports.list ]; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
  fi
fi

qemu_ok=0
if have qemu-system-x86_64; then
  major=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1)
  if [ "${major:-0}" -ge 8 ]; then qemu_ok=1; fi
fi

# Each check matches what tools/src/system.rs looks for.
have bochs || need+=(bochs)
[ -f /usr/share/bochs/BIOS-bochs-latest ] || need+=(bochsbios)
[ -f /usr/share/vgabios/vgabios.bin ] || need+=(vgabios)
# Debian's Bochs has no `nogui`; the terminal display needs no X server.
[ -f /usr/lib/x86_64-linux-gnu/bochs/plugins/libbx_term_gui.so ] || need+=(bochs-term)
have setsid || need+=(util-linux)
have grub-mkrescue || need+=(grub-common)
[ -d /usr/lib/grub/i386-pc ] || need+=(grub-pc-bin)
[ -d /usr/lib/grub/x86_64-efi ] || need+=(grub-efi-amd64-bin)
have xorriso || need+=(xorriso)
have mformat || need+=(mtools)
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] && [ -f /usr/share/OVMF/OVMF_VARS_4M.fd ] || need+=(ovmf)
# Not a run-time need: ci/test.sh builds the fuzz targets, and libfuzzer-sys
# compiles libFuzzer (C++) with it.
have c++ || need+=(g++)

if [ "$qemu_ok" -eq 0 ] || [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  if [ "${#need[@]}" -gt 0 ]; then
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
  if [ "$qemu_ok" -eq 0 ]; then
    if [ "$qemu_from_backports" -eq 1 ]; then
      $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86
    else
      $SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86
    fi
  fi
fi

# The Rust toolchain, components and target come from rust-toolchain.toml;
# the Linux partition's userspace program (linux-user/) is built for musl.
if have rustup; then
  (cd "$(dirname "$0")/.." && { rustup toolchain install >/dev/null 2>&1 || true; } && rustup show active-toolchain >/dev/null \
    && rustup target add x86_64-unknown-linux-musl >/dev/null)
fi

# A stock Debian kernel and a static busybox for the Linux partition tests
# (tests/tests/linux.rs, docs/linux.md): downloaded with `apt-get download`
# (never installed), unpacked into the cache directory the tools read
# (tools/src/initramfs.rs, `LinuxAssets::locate`), and kept there: a second
# run with the files present downloads nothing. FLOTILLA_LINUX_PACKAGE
# names another kernel package (default: what linux-image-amd64 depends on).
linux_dir="${FLOTILLA_LINUX_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla/linux}"
if [ ! -s "$linux_dir/vmlinuz" ] || [ ! -s "$linux_dir/busybox" ] || [ ! -s "$linux_dir/kernel-version" ]; then
  if ! apt-cache show linux-image-amd64 busybox-static >/dev/null 2>&1; then
    $SUDO apt-get update -qq
  fi
  pkg="${FLOTILLA_LINUX_PACKAGE:-$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -1)}"
  if [ -z "$pkg" ]; then
    echo "flotilla setup: cannot tell which kernel package linux-image-amd64 depends on" >&2
    exit 1
  fi
  mkdir -p "$linux_dir"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # apt-get download writes into the current directory; as root it warns
  # that the _apt user cannot write there, which is harmless.
  (cd "$work" && apt-get download -qq "$pkg" busybox-static 2>&1 | grep -v 'unsandboxed' || true)
  kdeb=$(ls "$work"/linux-image-*.deb 2>/dev/null | head -1)
  bdeb=$(ls "$work"/busybox-static_*.deb 2>/dev/null | head -1)
  if [ -z "$kdeb" ] || [ -z "$bdeb" ]; then
    echo "flotilla setup: apt-get download $pkg busybox-static failed" >&2
    exit 1
  fi
  mkdir -p "$work/k" "$work/b"
  dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$work/k" --wildcards './boot/vmlinuz-*' './boot/config-*'
  dpkg-deb --fsys-tarfile "$bdeb" | tar -x -C "$work/b" ./bin/busybox
  vmlinuz=$(ls "$work"/k/boot/vmlinuz-* | head -1)
  version="${vmlinuz##*/vmlinuz-}"
  # Written under temporary names first, so an interrupted run leaves no
  # half-written file under the final name.
  cp "$vmlinuz" "$linux_dir/vmlinuz.tmp" && mv "$linux_dir/vmlinuz.tmp" "$linux_dir/vmlinuz"
  cp "$work"/k/boot/config-* "$linux_dir/config.tmp" && mv "$linux_dir/config.tmp" "$linux_dir/config"
  cp "$work/b/bin/busybox" "$linux_dir/busybox.tmp" && mv "$linux_dir/busybox.tmp" "$linux_dir/busybox"
  chmod 0755 "$linux_dir/busybox"
  printf '%s\n' "$(dpkg-deb -f "$kdeb" Package) $(dpkg-deb -f "$kdeb" Version)" > "$linux_dir/kernel-package"
  printf '%s\n' "$version" > "$linux_dir/kernel-version"
  rm -rf "$work"
  trap - EXIT
  echo "flotilla setup: Linux $version and busybox in $linux_dir"
fi
echo "flotilla setup: system packages present"
