export { ARKTOS_ERRORS, type ArktosErrorCode, arktosError } from './errors.js';
export {
  compareTenants,
  type Partition,
  partitionContains,
  partitionName,
  renderDataPartitionConfig,
  renderDataPartitionConfigs,
  resolveTenant,
  serviceGroupEnv,
  validatePartitions,
} from './partitions.js';
