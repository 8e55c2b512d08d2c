import { type Static, Type } from '@sinclair/typebox';
import { Hostname, IpAddress, IsoTime } from './common.js';

export const Disk = Type.Object({
  name: Type.String(),
  type: Type.String({ description: 'HD, SSD, NVMe, disk, part, or fs when only a filesystem is known' }),
  sizeBytes: Type.Number({ minimum: 0 }),
  mount: Type.Optional(Type.String()),
  source: Type.Union([Type.Literal('diskLayout'), Type.Literal('blockDevices'), Type.Literal('fsSize')]),
});

export const NetInterface = Type.Object({
  name: Type.String({ maxLength: 64, pattern: '^[^\\s/]+$', description: 'interface name' }),
  mac: Type.String({ maxLength: 64, pattern: '^[0-9A-Fa-f:.-]*$' }),
  addresses: Type.Array(IpAddress, { maxItems: 64 }),
  internal: Type.Boolean(),
  virtual: Type.Boolean(),
});

export const Gpu = Type.Object({
  vendor: Type.String(),
  model: Type.String(),
  vramMb: Type.Optional(Type.Number({ minimum: 0 })),
});

export const BinaryInfo = Type.Object({
  path: Type.String(),
  version: Type.String(),
});

export const Facts = Type.Object(
  {
    hostname: Hostname,
    machineId: Type.String({ maxLength: 128 }),
    cpu: Type.Object({
      cores: Type.Integer({ minimum: 1 }),
      physicalCores: Type.Integer({ minimum: 0 }),
      model: Type.String(),
      speedGHz: Type.Optional(Type.Number({ minimum: 0 })),
    }),
    memory: Type.Object({ totalBytes: Type.Number({ minimum: 0 }) }),
    disks: Type.Array(Disk),
    os: Type.Object({
      // platform and arch become labels (drover.dev/os, drover.dev/arch, the kwok Node's kubernetes.io/arch)
      platform: Type.String({ maxLength: 63, pattern: '^[A-Za-z0-9._-]*$' }),
      distro: Type.String({ maxLength: 256 }),
      release: Type.String({ maxLength: 256 }),
      kernel: Type.String({ maxLength: 256 }),
      arch: Type.String({ maxLength: 63, pattern: '^[A-Za-z0-9._-]*$' }),
    }),
    network: Type.Array(NetInterface),
    gpus: Type.Array(Gpu),
    virtualization: Type.Object({ virtual: Type.Boolean(), host: Type.Optional(Type.String()) }),
    binaries: Type.Record(Type.String(), BinaryInfo, {
      description: 'installed role binaries by name (etcd, haproxy, kube-apiserver, …) with versions',
    }),
    collectedAt: IsoTime,
  },
  { $id: 'Facts' },
);
export type Facts = Static<typeof Facts>;
