import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { registerAssignmentRoutes } from './assignments.js';
import { registerCertificateRoutes } from './certificates.js';
import { registerCoordinatorRoutes } from './coordinators.js';
import { registerDrainRoutes } from './drain.js';
import { registerEtcdRoutes } from './etcd.js';
import { registerEtcdRestoreRoutes } from './etcd-restore.js';
import { registerEtcdSnapshotRoutes } from './etcd-snapshots.js';
import { registerEventRoutes } from './events.js';
import { registerHealthRoutes } from './health.js';
import { registerLabelRoutes } from './labels.js';
import { registerNodeRoutes } from './nodes.js';
import { registerRoleRoutes } from './roles.js';
import { registerSeedRoutes } from './seeds.js';
import { registerStatusRoutes } from './status.js';
import { registerTaskRoutes } from './tasks.js';
import { registerTokenRoutes } from './tokens.js';
import { registerTopologyRoutes } from './topologies.js';
import { registerVcRoutes } from './vc.js';

/** Every resource's routes (one file each), in the order the OpenAPI document lists them. */
export async function registerRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  await registerHealthRoutes(app, ctx);
  await registerCoordinatorRoutes(app, ctx);
  await registerStatusRoutes(app, ctx);
  await registerTopologyRoutes(app, ctx);
  await registerLabelRoutes(app, ctx);
  await registerSeedRoutes(app, ctx);
  await registerCertificateRoutes(app, ctx);
  await registerVcRoutes(app, ctx);
  await registerDrainRoutes(app, ctx);
  await registerNodeRoutes(app, ctx);
  await registerRoleRoutes(app, ctx);
  await registerAssignmentRoutes(app, ctx);
  await registerEtcdRoutes(app, ctx);
  await registerEtcdSnapshotRoutes(app, ctx);
  await registerEtcdRestoreRoutes(app, ctx);
  await registerEventRoutes(app, ctx);
  await registerTaskRoutes(app, ctx);
  await registerTokenRoutes(app, ctx);
}
