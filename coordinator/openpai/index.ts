export { unknownHostIpsWarning } from './check-nodes.js';
export { OPENPAI_ERRORS, OpenPaiError, type OpenPaiProblem } from './errors.js';
export {
  CLUSTER_FILES,
  type HaSolution,
  K8S_ROLES,
  type K8sRole,
  KUBERNETES_FILE,
  type OpenPaiCluster,
  type OpenPaiNode,
  parseOpenPai,
} from './parse.js';
export {
  importOpenPai,
  type OpenPaiImport,
  type OpenPaiImportOptions,
  openPaiTopologyDocument,
  readOpenPaiPath,
} from './to-topology.js';
