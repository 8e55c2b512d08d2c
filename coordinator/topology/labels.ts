import type { Facts, Labels } from '../../protocol/index.js';

export const LABEL_PREFIX = 'drover.dev/';

/** Node.js / systeminformation architecture names → the GOARCH names Kubernetes uses. */
const ARCH: Record<string, string> = {
  x64: 'amd64',
  x86_64: 'amd64',
  amd64: 'amd64',
  ia32: '386',
  x86: '386',
  i386: '386',
  i686: '386',
  arm64: 'arm64',
  aarch64: 'arm64',
  arm: 'arm',
  armv7l: 'arm',
  ppc64: 'ppc64le',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

const LABEL_KEY = /^[A-Za-z0-9._/-]{1,253}$/;

/**
 * Labels derived from a node's facts, all under `drover.dev/`, so topologies can select on what a
 * host is and has: `drover.dev/arch` (amd64, arm64 …), `cpu-cores`, `memory-gb` (GiB, rounded),
 * `os` (linux …), `hostname`, `gpu-count`, `virtual` ("true"/"false") and `has-<binary>` ("true")
 * for every role binary the agent found installed.
 */
export function deriveLabels(facts: Facts): Labels {
  const arch = facts.os.arch.toLowerCase();
  const labels: Labels = {
    [`${LABEL_PREFIX}arch`]: ARCH[arch] ?? arch,
    [`${LABEL_PREFIX}cpu-cores`]: String(facts.cpu.cores),
    [`${LABEL_PREFIX}memory-gb`]: String(Math.round(facts.memory.totalBytes / 2 ** 30)),
    [`${LABEL_PREFIX}os`]: facts.os.platform.toLowerCase(),
    [`${LABEL_PREFIX}hostname`]: facts.hostname.slice(0, 253),
    [`${LABEL_PREFIX}gpu-count`]: String(facts.gpus.length),
    [`${LABEL_PREFIX}virtual`]: String(facts.virtualization.virtual),
  };
  for (const name of Object.keys(facts.binaries).sort()) {
    const key = `${LABEL_PREFIX}has-${name}`;
    if (LABEL_KEY.test(key)) labels[key] = 'true';
  }
  return labels;
}
