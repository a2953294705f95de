#!/usr/bin/env bash
# Builds corral-server_VERSION_ARCH.deb, the headless host for Debian/Ubuntu, from `npm pack`:
# the CLI and `corral serve` with the built UI in /usr/lib/corral, the Node.js that built it
# (Debian's own nodejs is older than Corral needs, and the native modules are built for this one),
# /usr/bin/corral, and a systemd unit (corral.service, running as the "corral" account, data in
# /var/lib/corral). The desktop app keeps its electron-builder targets (npm run dist).
#
# Usage: bash build/deb/build.sh [OUTDIR]     (default: dist/)
#   CORRAL_DEB_NO_BUILD=1   package the existing build instead of running `npm run build` first
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)
command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 1; }

# the Node.js that npm scripts use (scripts/setup.sh may have provided one in .node/)
node=$(node -p process.execPath)
nodedir=$(dirname "$(dirname "$node")")
[[ -d $nodedir/include/node ]] && export npm_config_nodedir=$nodedir
export PATH="$(dirname "$node"):$PATH"

if [[ -z ${CORRAL_DEB_NO_BUILD:-} ]]; then npm run build; fi
[[ -f out/renderer/index.html && -f out/electron/cli/main.js ]] || { echo "build-deb: not built; run npm run build" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm pack --silent --ignore-scripts --pack-destination "$tmp" >/dev/null
tarball=$(echo "$tmp"/corral-*.tgz)

# production dependencies only, native modules built for $node
npm install -g --prefix "$tmp/prefix" --no-fund --no-audit --allow-scripts=node-pty "$tarball" >&2

version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
stage=$tmp/stage
lib=$stage/usr/lib/corral
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$(dirname "$lib")"
mv "$tmp/prefix/lib/node_modules/corral" "$lib"
install -m 0755 "$node" "$lib/node"
# prebuilt native modules for other systems are dead weight here
narch=$("$node" -p process.arch)
for f in "$lib"/node_modules/*/prebuilds/*; do
  case $(basename "$f") in linux-$narch | linux-$narch.node) ;; *) rm -rf "$f" ;; esac
done
cat >"$stage/usr/bin/corral" <<'SH'
#!/bin/sh
exec /usr/lib/corral/node /usr/lib/corral/bin/corral "$@"
SH
chmod 0755 "$stage/usr/bin/corral"

# the unit `corral service install --system` would write, for this layout
"$node" -e '
  const { renderUnit } = require(process.argv[1]);
  process.stdout.write(renderUnit({ scope: "system", node: "/usr/lib/corral/node", corral: "/usr/lib/corral/bin/corral",
    dataDir: "/var/lib/corral", listen: "127.0.0.1:7420" }));
' "$root/out/electron/cli/service/unit.js" >"$stage/lib/systemd/system/corral.service"

installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: corral-server
Version: $version
Architecture: $arch
Maintainer: $(node -p 'require("./package.json").author')
Installed-Size: $installed_kb
Depends: qemu-system-x86, qemu-utils, passwd, libc6
Section: admin
Priority: optional
Homepage: $(node -p 'require("./package.json").homepage')
Description: QEMU virtual machines that come back by themselves (headless host)
 Corral runs QEMU guests, restarts them when they crash, starts them when the
 machine boots and shuts them down cleanly with it. This package is the
 headless host: the corral command, corral serve with its web UI, and a
 systemd unit running it as the corral account.
CONTROL

install -m 0755 "$root/build/deb/postinst" "$root/build/deb/prerm" "$root/build/deb/postrm" "$stage/DEBIAN/"

deb=$out/corral-server_${version}_${arch}.deb
# gzip: quick to build; the bundled Node.js is most of the size either way
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >&2
echo "$deb"
