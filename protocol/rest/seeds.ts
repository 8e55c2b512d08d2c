import { type Static, Type } from '@sinclair/typebox';

/** Arktos (seed 003): which tenant partition serves a tenant (GET /v1/tenants/:name/partition). */
export const TenantParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 253 }) });
export const PartitionView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  rangeStart: Type.String(),
  isRangeStartValid: Type.Boolean(),
  rangeEnd: Type.String(),
  isRangeEndValid: Type.Boolean(),
  replicas: Type.Integer(),
});
export const TenantPartition = Type.Object({
  cluster: Type.String(),
  tenant: Type.String(),
  partition: PartitionView,
  apiServers: Type.Array(
    Type.Object({
      instanceId: Type.String(),
      nodeId: Type.String(),
      address: Type.String(),
      url: Type.String(),
    }),
  ),
});
export type TenantPartition = Static<typeof TenantPartition>;
