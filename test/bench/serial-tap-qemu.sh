#!/usr/bin/env bash
# CORRAL_QEMU for the serial pipeline benchmark. A guest's emulated UART moves well under
# 1 MB/s under TCG, too slow to find out how much the host → WebSocket → page path carries.
# So QEMU runs as usual, but its serial socket is moved aside and a tap (serial-tap.mjs)
# listens where the host expects it: it relays both ways, and floods the host on request.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
args=()
sock=
for a in "$@"; do
  if [[ $a == socket,id=serial0,path=* ]]; then
    rest=${a#socket,id=serial0,path=}
    sock=${rest%%,*}
    a="socket,id=serial0,path=$sock.qemu,${rest#*,}"
  fi
  args+=("$a")
done
if [[ -n $sock ]]; then
  node "$here/serial-tap.mjs" "$sock" </dev/null >/dev/null 2>&1 &
fi
exec qemu-system-x86_64 "${args[@]}"
