#!/usr/bin/env bash
# Sets up a checkout on Debian/Ubuntu: QEMU (with OVMF for UEFI and swtpm for TPMs, passt for user-mode NICs), Node.js 24 if the machine's is too old, npm dependencies, a build.
# --dev also installs what the tests need: Chromium for the e2e tests, a Linux kernel + busybox from which
# test/fixtures builds the tiny test guest, stress-ng to run the suite under a CPU hog, and systemd for
# `systemd-analyze verify` of the service unit (it works where systemd is not PID 1), etcd and iproute2 for the
# cluster tests (hosts in network namespaces, each with an etcd member).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(qemu-system-x86 qemu-utils openssl ovmf swtpm swtpm-tools passt) # openssl: corral serve's self-signed TLS certificate
if [[ "${1:-}" == "--dev" ]]; then
  pkgs+=(chromium linux-image-amd64 busybox-static cpio stress-ng systemd etcd-server iproute2 qemu-guest-agent e2fsprogs) # etcd-server, iproute2: the cluster and HA tests run real etcd members in network namespaces; qemu-guest-agent: a real agent's answers for guest addresses; e2fsprogs: the HA chaos test checks the guest disk
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

# Node.js. The machine's node is used if it meets package.json's engines. If not, the official Node build
# of .nvmrc's major comes from the npm registry (package node-linux-<arch>: the binary and its headers) into
# .node/ (gitignored), and node_modules/.bin/node links to it. npm puts node_modules/.bin first on PATH for
# every script, so `node`, the `#!/usr/bin/env node` tools (tsc, vite, vitest, tsx) and all they spawn run
# on it, whatever node npm itself runs on; bin/corral uses the same link. Here, .node/bin goes first on PATH
# so that npm ci runs install scripts (native addons) with it, and npm_config_nodedir gives node-gyp its headers.
supported() { # NODE: does this node satisfy engines.node (">=MAJOR.MINOR")?
  "$1" -e 'const [, a, b] = /^>=(\d+)\.(\d+)/.exec(require("./package.json").engines.node).map(Number);
    const [x, y] = process.versions.node.split(".").map(Number);
    process.exit(x > a || (x === a && y >= b) ? 0 : 1);' 2>/dev/null
}
provided=
if ! supported node; then
  want=$(<.nvmrc)
  if [[ ! -x .node/bin/node ]] || [[ $(.node/bin/node -p 'process.versions.node.split(".")[0]') != "$want" ]]; then
    case $(uname -m) in
      x86_64) arch=x64 ;;
      aarch64) arch=arm64 ;;
      *) echo "setup: no Node $want package for $(uname -m); install Node.js $want yourself" >&2 && exit 1 ;;
    esac
    echo "Node.js on PATH is $(node -v 2>/dev/null || echo missing); fetching Node $want from the npm registry into .node/"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    npm pack --silent --pack-destination "$tmp" "node-linux-$arch@$want" >/dev/null
    mkdir "$tmp/node"
    tar -xzf "$tmp"/node-linux-*.tgz -C "$tmp/node" --strip-components=1
    rm -rf .node && mv "$tmp/node" .node
  fi
  provided=1
  export PATH="$PWD/.node/bin:$PATH" npm_config_nodedir="$PWD/.node"
fi
echo "Using Node.js $(node -v) ($(command -v node))"

# npm ci when the lockfile changed since the last install, or node_modules was built for another Node ABI
abi=$(node -p process.versions.modules)
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ||
  $(cat node_modules/.corral-node-abi 2>/dev/null) != "$abi" ]]; then
  npm ci --no-fund --no-audit
  echo "$abi" >node_modules/.corral-node-abi
fi
if [[ -n $provided ]]; then
  ln -sfn ../../.node/bin/node node_modules/.bin/node
  # `npx corral` finds this link without loading package.json, whose engines npm's old node warns about
  ln -sfn ../../bin/corral node_modules/.bin/corral
else
  rm -f node_modules/.bin/node node_modules/.bin/corral # the machine's node is new enough (now)
fi
npm run build

if [[ "${1:-}" == "--dev" ]]; then
  bash test/fixtures/build-guest.sh
fi
