#!/usr/bin/env bash
# The README's one command for the lab: installs what the lab needs on Debian 12 (the Debian
# packages nats-server, etcd-server, etcd-client, haproxy, iproute2, and the npm dependencies, via
# scripts/setup.sh, which also builds dist/), then starts a whole Drover fleet on this machine:
#   bash scripts/lab.sh                 # 7 hosts on loopback addresses, examples/ha.yaml
#   bash scripts/lab.sh --netns         # one network namespace per host (root)
#   bash scripts/lab.sh --nodes 9 --topology my.yaml
# Every argument goes to `drover lab up` (see `node dist/drover.mjs lab --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/drover.mjs lab up "$@"
