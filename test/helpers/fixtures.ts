import {
  type Event,
  type Facts,
  type Heartbeat,
  type InstanceSpec,
  type MessageName,
  type MessageOf,
  type NodePlan,
  type NodeStatus,
  PROTOCOL_VERSION,
  type Register,
  sealPlan,
} from '../../protocol/index.js';

const now = '2026-11-23T08:00:00.000Z';

export function sampleFacts(over: Partial<Facts> = {}): Facts {
  return {
    hostname: 'cp-1',
    machineId: '0123456789abcdef0123456789abcdef',
    cpu: { cores: 4, physicalCores: 2, model: 'Test CPU', speedGHz: 2.4 },
    memory: { totalBytes: 8 * 1024 ** 3 },
    disks: [{ name: '/dev/vda', type: 'disk', sizeBytes: 100 * 1024 ** 3, source: 'blockDevices' }],
    os: { platform: 'linux', distro: 'Debian GNU/Linux', release: '12', kernel: '6.1.0', arch: 'x64' },
    network: [
      { name: 'eth0', mac: '52:54:00:12:34:56', addresses: ['10.0.0.11'], internal: false, virtual: false },
    ],
    gpus: [],
    virtualization: { virtual: true, host: 'KVM' },
    binaries: { etcd: { path: '/usr/bin/etcd', version: '3.4.23' } },
    collectedAt: now,
    ...over,
  };
}

export function sampleInstance(
  over: Partial<Omit<InstanceSpec, 'checksum'>> = {},
): Omit<InstanceSpec, 'checksum'> {
  return {
    id: 'web#0',
    role: 'web',
    epoch: 1,
    simulated: false,
    files: [{ path: '/etc/web/config.txt', mode: 0o644, content: 'hello\n' }],
    run: { command: '/usr/bin/env', args: ['sleep', '1000'], env: { FOO: 'bar' } },
    health: {
      kind: 'http',
      host: '127.0.0.1',
      port: 8080,
      path: '/healthz',
      periodMs: 2000,
      timeoutMs: 1000,
      initialDelayMs: 0,
      failureThreshold: 3,
      successThreshold: 1,
    },
    restart: {
      policy: 'always',
      initialBackoffMs: 1000,
      maxBackoffMs: 60_000,
      resetAfterMs: 60_000,
      crashLoopThreshold: 5,
    },
    ...over,
  };
}

export function samplePlan(
  over: {
    nodeId?: string;
    generation?: number;
    coordinatorEpoch?: number;
    instances?: Array<Omit<InstanceSpec, 'checksum'>>;
  } = {},
): NodePlan {
  return sealPlan({
    v: PROTOCOL_VERSION,
    type: 'plan',
    nodeId: over.nodeId ?? 'node-1',
    generation: over.generation ?? 1,
    coordinatorEpoch: over.coordinatorEpoch ?? 1,
    issuedAt: now,
    instances: over.instances ?? [sampleInstance()],
  });
}

/** One valid sample of every message type, used by round-trip and fuzz tests. */
export function sampleMessages(): { [N in MessageName]: MessageOf<N> } {
  const plan = samplePlan();
  const digest = {
    generation: 1,
    checksum: plan.checksum,
    coordinatorEpoch: 1,
    health: 'abcdef0123456789',
    instances: 1,
    unhealthy: 0,
  };
  const register: Register = {
    v: PROTOCOL_VERSION,
    type: 'register',
    nodeId: 'node-1',
    hostname: 'cp-1',
    address: '127.0.0.2',
    labels: { pool: 'control-plane' },
    facts: sampleFacts(),
    fingerprint: { machineId: '0123456789abcdef0123456789abcdef', macs: ['52:54:00:12:34:56'] },
    agentVersion: '0.1.0',
  };
  const heartbeat: Heartbeat = {
    v: PROTOCOL_VERSION,
    type: 'heartbeat',
    nodeId: 'node-1',
    seq: 7,
    sentAt: now,
    digest,
  };
  const status: NodeStatus = {
    v: PROTOCOL_VERSION,
    type: 'status',
    nodeId: 'node-1',
    seq: 8,
    sentAt: now,
    plan: { generation: 1, checksum: plan.checksum, coordinatorEpoch: 1, state: 'applied' },
    digest,
    instances: [
      {
        id: 'web#0',
        role: 'web',
        epoch: 1,
        checksum: plan.instances[0]!.checksum,
        phase: 'Healthy',
        health: 'healthy',
        restarts: 0,
        pid: 1234,
        startedAt: now,
        simulated: false,
      },
    ],
  };
  const event: Event = {
    v: PROTOCOL_VERSION,
    type: 'event',
    id: 'e1',
    seq: 1,
    time: now,
    kind: 'node.joined',
    severity: 'info',
    message: 'node-1 joined',
    nodeId: 'node-1',
  };
  return {
    Facts: sampleFacts(),
    FactsUpdate: { v: PROTOCOL_VERSION, type: 'facts', nodeId: 'node-1', facts: sampleFacts() },
    Join: {
      v: PROTOCOL_VERSION,
      type: 'join',
      tokenId: 'abc123',
      nodeId: 'node-1',
      hostname: 'node-1',
      address: '10.0.0.1',
      fingerprint: { machineId: 'm1', macs: [] },
      userKey: 'UCXPHN4X4SQUWJGNMOFMPU5BSAVQZN4RSC6LFGOHFRDLHKGJBHXKJ66B',
      nonce: 'nonce-0123456789ab',
      agentVersion: '0.1.0',
    },
    JoinReply: {
      v: PROTOCOL_VERSION,
      type: 'join-reply',
      ok: true,
      nodeId: 'node-1',
      nonce: 'nonce-0123456789ab',
      userKey: 'UCXPHN4X4SQUWJGNMOFMPU5BSAVQZN4RSC6LFGOHFRDLHKGJBHXKJ66B',
      state: 'Ready',
      userJwt: 'eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig',
      signingKey: 'MCowBQYDK2VwAyEA',
      keyFingerprint: 'ab',
      signature: 'c2ln',
    },
    Register: register,
    RegisterReply: {
      v: PROTOCOL_VERSION,
      type: 'register-reply',
      accepted: true,
      nodeId: 'node-1',
      state: 'Ready',
      coordinatorEpoch: 1,
      signingKey: 'AAAA',
      keyFingerprint: 'ff',
      heartbeatIntervalMs: 2000,
    },
    Heartbeat: heartbeat,
    NodeStatus: status,
    NodePlan: plan,
    SignedPlan: { v: PROTOCOL_VERSION, type: 'plan-push', plan, signature: 'c2ln', keyId: 'ff' },
    PlanFetch: {
      v: PROTOCOL_VERSION,
      type: 'plan-fetch',
      nodeId: 'node-1',
      have: { generation: 1, checksum: plan.checksum },
    },
    PlanResult: {
      v: PROTOCOL_VERSION,
      type: 'plan-result',
      nodeId: 'node-1',
      generation: 1,
      checksum: plan.checksum,
      accepted: true,
      changes: { started: ['web#0'], restarted: [], stopped: [], unchanged: [] },
    },
    Task: {
      v: PROTOCOL_VERSION,
      type: 'task',
      id: 't1',
      nodeId: 'node-1',
      kind: 'restart',
      instanceId: 'web#0',
      timeoutMs: 30_000,
      issuedAt: now,
      expiresAt: now,
    },
    SignedTask: {
      v: PROTOCOL_VERSION,
      type: 'task-push',
      task: {
        v: PROTOCOL_VERSION,
        type: 'task',
        id: 't1',
        nodeId: 'node-1',
        kind: 'restart',
        instanceId: 'web#0',
        timeoutMs: 30_000,
        issuedAt: now,
        expiresAt: now,
      },
      signature: 'c2ln',
      keyId: 'ff',
    },
    TaskResult: {
      v: PROTOCOL_VERSION,
      type: 'task-result',
      id: 't1',
      nodeId: 'node-1',
      ok: true,
      output: 'restarted',
      finishedAt: now,
    },
    Event: event,
    CertificateRequest: {
      v: PROTOCOL_VERSION,
      type: 'csr',
      nodeId: 'node-1',
      instanceId: 'kube-apiserver#0',
      profile: 'apiserver-serving',
      csrPem: '-----BEGIN CERTIFICATE REQUEST-----',
    },
    CertificateReply: { v: PROTOCOL_VERSION, type: 'csr-reply', ok: true, certPem: 'x', caPem: 'y' },
    SnapshotChunkRequest: {
      v: PROTOCOL_VERSION,
      type: 'snapshot-chunk',
      nodeId: 'node-1',
      instanceId: 'etcd#0',
      snapshotId: 'c1-20261204T101010Z-a1b2c3',
      offset: 0,
    },
    SnapshotChunkReply: {
      v: PROTOCOL_VERSION,
      type: 'snapshot-chunk-reply',
      ok: true,
      offset: 0,
      size: 3,
      data: 'AAEC',
    },
  };
}
