export { type Capacity, type CapacityOptions, capacityFromNodes, DEFAULT_NODE_RESERVE } from './capacity.js';
export { VC_ERRORS, type VcErrorCode, vcError } from './errors.js';
export {
  DEFAULT_SLICE,
  MAX_SLICES_PER_TENANT,
  type PlaceSlicesInput,
  type PlaceSlicesResult,
  parseSliceAnnotation,
  placementAnnotation,
  placeSlices,
  type SlicePlacements,
  type SliceSize,
  type SuperClusterCapacity,
  slicesForQuota,
  type TenantQuota,
  type UnplacedSlices,
} from './placement.js';
export {
  formatCpu,
  formatMemory,
  humanCpu,
  humanMemory,
  parseCpuMilli,
  parseMemoryBytes,
} from './quantity.js';
export {
  type PlacementRecord,
  type SuperClusterView,
  type TenantRecord,
  type VcEngine,
  VcService,
  type VcServiceOptions,
} from './service.js';
