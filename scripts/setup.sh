#!/usr/bin/env bash
# Sets up a checkout on Debian/Ubuntu: QEMU, npm dependencies, a build.
# --dev also installs what the tests need: Chromium for the e2e tests, and a Linux kernel +
# busybox from which test/fixtures builds the tiny test guest.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(qemu-system-x86 qemu-utils)
if [[ "${1:-}" == "--dev" ]]; then
  pkgs+=(chromium linux-image-amd64 busybox-static cpio)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "Installing system packages: ${missing[*]}"
  sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci only when the lockfile changed since the last install
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-fund --no-audit
fi
npm run build

if [[ "${1:-}" == "--dev" ]]; then
  bash test/fixtures/build-guest.sh
fi
