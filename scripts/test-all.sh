#!/usr/bin/env bash
# The one command that runs every check: dependencies, lint, typecheck, then the whole test suite
# (unit, integration against real nats-server/etcd/haproxy, end-to-end). `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run lint
npm run typecheck
npx vitest run "$@"
