import { type Static, Type } from '@sinclair/typebox';

/** VirtualCluster (seed 002): super clusters and tenant quotas placed as slices across them. */
export const Quantity = Type.Union([
  Type.String({ minLength: 1, maxLength: 64 }),
  Type.Number({ minimum: 0 }),
]);
export const Resources = Type.Object({ cpu: Quantity, memory: Quantity }, { additionalProperties: false });

export const TenantBody = Type.Object(
  {
    slices: Type.Optional(Type.Integer({ minimum: 0, description: 'the quota as a number of slices' })),
    quota: Type.Optional(
      Type.Object(
        { cpu: Quantity, memory: Quantity },
        {
          additionalProperties: false,
          description: 'a ResourceQuota (hard cpu and memory), turned into slices',
        },
      ),
    ),
    slice: Type.Optional(
      Type.Object(
        { cpu: Quantity, memory: Quantity },
        { additionalProperties: false, description: 'slice size; default {"cpu":"100m","memory":"100Mi"}' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const TenantParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 253 }) });

export const CapacityView = Type.Object({
  cpu: Type.String(),
  memory: Type.String(),
  cpuMilli: Type.Integer(),
  memoryBytes: Type.Integer(),
});

export const TenantView = Type.Object({
  name: Type.String(),
  slices: Type.Integer(),
  slice: Resources,
  quota: Type.Optional(Resources),
  /** super cluster → slices */
  placements: Type.Record(Type.String(), Type.Integer()),
  /** the seed's `scheduler.tenancy.x-k8s.io/placements` annotation value */
  annotation: Type.String(),
  unplaced: Type.Integer(),
  unplacedReason: Type.Optional(Type.String()),
  updatedAt: Type.String(),
});

export const SuperClusterViewSchema = Type.Object({
  name: Type.String(),
  nodes: Type.Integer({ description: 'Ready kubelet nodes (Suspect ones still count)' }),
  capacity: CapacityView,
  used: CapacityView,
  free: CapacityView,
});
export type TenantView = Static<typeof TenantView>;
export type SuperClusterView = Static<typeof SuperClusterViewSchema>;
