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

# The Rust toolchain, components and target come from rust-toolchain.toml.
if have rustup; then
  (cd "$(dirname "$0")/.." && { rustup toolchain install >/dev/null 2>&1 || true; } && rustup show active-toolchain >/dev/null)
fi
echo "flotilla setup: system packages present"
