export { API_ERRORS, type ApiErrorCode } from '../../protocol/rest/errors.js';
export * as schemas from '../../protocol/rest/schemas.js';
export { TaskTracker, type TaskTrackerOptions } from '../tasks.js';
export { type ApiDeps, buildApi } from './app.js';
export { type ApiContext, type EngineOps, requireRole } from './context.js';
export {
  type CoordinatorMetrics,
  createMetrics,
  type MetricsOptions,
  type MetricsSource,
  type RepairResult,
} from './metrics.js';
export { FailureLimiter, type FailureLimiterOptions } from './ratelimit.js';
export { type ApiServer, type ApiServerOptions, parseListen, startApiServer } from './server.js';
export { SseHub, type SseOptions } from './sse.js';
export {
  adminTokenPath,
  newTokenSecret,
  roleAllows,
  TOKEN_ROLES,
  type TokenInfo,
  type TokenRole,
  TokenStore,
  type TokenStoreOptions,
  tokensPath,
} from './tokens.js';
export { assignmentViews, isHealthy, nodeDetail, nodeView, roleViews, statusView } from './views.js';
