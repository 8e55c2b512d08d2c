/**
 * VirtualCluster routes (seed 002): super clusters with their capacity, and tenant namespace
 * quotas placed as slices across them, in the seed's `{"r1":1,"r2":1}` form.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ErrorBody, errorResponses, List } from '../../../protocol/rest/schemas.js';
import { SuperClusterViewSchema, TenantBody, TenantParams, TenantView } from '../../../protocol/rest/vc.js';
import {
  type Capacity,
  DEFAULT_SLICE,
  formatCpu,
  formatMemory,
  placementAnnotation,
  type TenantRecord,
  type VcService,
  vcError,
} from '../../vc/index.js';
import type { ApiContext } from '../context.js';

const cap = (c: Capacity) => ({
  cpu: formatCpu(c.cpuMilli),
  memory: formatMemory(c.memoryBytes),
  cpuMilli: c.cpuMilli,
  memoryBytes: c.memoryBytes,
});

function tenantView(vc: VcService, t: TenantRecord): Static<typeof TenantView> {
  const p = vc.placement();
  const placements = p.placements[t.name] ?? {};
  const u = p.unplaced.find((x) => x.tenant === t.name);
  return {
    name: t.name,
    slices: t.slices,
    slice: t.slice ?? { ...DEFAULT_SLICE },
    ...(t.quota ? { quota: t.quota } : {}),
    placements,
    annotation: placementAnnotation(placements),
    unplaced: u?.slices ?? 0,
    ...(u ? { unplacedReason: u.reason } : {}),
    updatedAt: t.updatedAt,
  };
}

function tenantOr404(vc: VcService, name: string): TenantRecord {
  const t = vc.tenant(name);
  if (!t)
    throw vcError(
      'DROVER_ERR_VC_TENANT_NOT_FOUND',
      `no tenant ${JSON.stringify(name)}; see \`drover tenants\``,
      {
        tenant: name,
      },
    );
  return t;
}

export async function registerVcRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { vc } = ctx;

  app.get(
    '/v1/superclusters',
    {
      config: { auth: 'viewer' },
      schema: {
        tags: ['virtualcluster'],
        description:
          "Super clusters (every cluster whose topology has a kubelet role) with their allocatable capacity, summed from their Ready kubelet nodes' facts (total minus a per-node reserve), and what the tenants' slices use.",
        response: { 200: List(SuperClusterViewSchema) },
      },
    },
    async () => ({
      items: vc.superClusters().map((s) => ({
        name: s.name,
        nodes: s.nodes,
        capacity: cap(s.capacity),
        used: cap(s.used),
        free: cap({
          cpuMilli: s.capacity.cpuMilli - s.used.cpuMilli,
          memoryBytes: s.capacity.memoryBytes - s.used.memoryBytes,
        }),
      })),
    }),
  );

  app.get(
    '/v1/tenants',
    {
      config: { auth: 'viewer' },
      schema: {
        tags: ['virtualcluster'],
        description:
          'Tenant namespace quotas and where their slices are placed (`annotation` is the seed\'s `{"r1":1,"r2":1}`).',
        response: { 200: List(TenantView) },
      },
    },
    async () => ({ items: vc.listTenants().map((t) => tenantView(vc, t)) }),
  );

  app.get<{ Params: Static<typeof TenantParams> }>(
    '/v1/tenants/:name',
    {
      config: { auth: 'viewer' },
      schema: {
        tags: ['virtualcluster'],
        params: TenantParams,
        response: { 200: TenantView, 404: ErrorBody },
      },
    },
    async (req) => tenantView(vc, tenantOr404(vc, req.params.name)),
  );

  app.put<{ Params: Static<typeof TenantParams>; Body: Static<typeof TenantBody> }>(
    '/v1/tenants/:name',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['virtualcluster'],
        description:
          'Creates or changes a tenant namespace quota: `slices` (a count) or `quota` ({cpu, memory}, turned into enough slices to cover both), with an optional `slice` size. The slices are placed at once; earlier placements are kept where they still fit.',
        params: TenantParams,
        body: TenantBody,
        response: { 200: TenantView, ...errorResponses },
      },
    },
    async (req) => {
      const { tenant } = await vc.setTenant(req.params.name, req.body ?? {});
      req.log.info({ tenant: tenant.name, slices: tenant.slices, by: req.token?.name }, 'tenant quota set');
      return tenantView(vc, tenant);
    },
  );

  app.delete<{ Params: Static<typeof TenantParams> }>(
    '/v1/tenants/:name',
    {
      config: { auth: 'operator' },
      schema: {
        tags: ['virtualcluster'],
        params: TenantParams,
        response: { 200: Type.Object({ message: Type.String() }), 404: ErrorBody },
      },
    },
    async (req) => {
      tenantOr404(vc, req.params.name);
      await vc.deleteTenant(req.params.name);
      return { message: `tenant ${req.params.name} deleted; its slices are free` };
    },
  );
}
