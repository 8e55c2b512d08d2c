export {
  LabApi,
  type LabAssignment,
  type LabEvent,
  type LabInstanceView,
  type LabNodeView,
  type LabRoleView,
  type LabStatusView,
} from './api.js';
export { labProcs, nodeProcs, type RoleProcess, roleProcesses } from './collect.js';
export {
  type LabService,
  parseService,
  type ServiceResult,
  serviceLabel,
  serviceProc,
  startService,
  stopService,
} from './control.js';
export { type LabDownResult, labDown, labLeftovers, teardown } from './down.js';
export { LAB_ERROR_CODES, LabError, type LabErrorCode, type LabErrorSpec } from './errors.js';
export {
  heal,
  type KillHostResult,
  killHost,
  type PartitionResult,
  partition,
  revive,
  stopRole,
} from './faults.js';
export { k8sSummary, type LabK8sState } from './k8s.js';
export {
  CLUSTER_LABEL,
  DEFAULT_NODES,
  fleetLayout,
  type LayoutOptions,
  MAX_NODES,
  MIN_NODES,
  type NodeLayout,
  type Pool,
  poolSizes,
} from './layout.js';
export { leftovers, listLinks, listNetns, netNames } from './netns.js';
export {
  type CompiledLabUpOptions,
  compileLabUpOptions,
  DEFAULT_API_PORT,
  DEFAULT_LAB_DIR,
  DEFAULT_LAB_TIMEOUT_MS,
  DEFAULT_NATS_PORT,
  type LabUpOptions,
} from './options.js';
export { defaultDistDir, defaultTopologyFile, labPaths } from './paths.js';
export { LAB_PROGRAMS, preflight } from './preflight.js';
export { type LabNodeState, type LabState, readState, STATE_FILE } from './state.js';
export {
  type LabNodeReport,
  type LabStatusReport,
  labStatus,
  runningInstances,
  type ServiceStatus,
} from './status.js';
export { loadLabTopology } from './topology.js';
export { type LabUpResult, labUp, type Progress, roleLine } from './up.js';
