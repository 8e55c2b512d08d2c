export { ROLE_CATALOG, roleDependencies, rolePorts, roleReads } from './catalog.js';
export {
  type PkiRenderOptions,
  pkiContextFor,
  pkiNodeFor,
  planCertificates,
  ROLE_CERTIFICATES,
  roleCertificates,
  serviceAccountFiles,
} from './certs.js';
export { atLeast, DEFAULT_RESTART, kubeMinor } from './common.js';
export { type RenderDiff, renderDiff } from './diff.js';
export { APISERVER_PORT, endpointDependencies, resolveApiEndpoint } from './endpoint.js';
export { KUBECONFIG_FILE, kubeconfigFile, kubeconfigPath } from './kubeconfig.js';
export {
  apiserverPartition,
  clientKubeconfigs,
  isPartitioned,
  KUBECONFIG_NAMES,
  partitionForOrdinal,
  partitionMembers,
  partitionServers,
} from './partitions.js';
export {
  CERTS,
  CLIENT_CERT,
  certPath,
  configDir,
  hostPort,
  instanceCertDir,
  instanceName,
  ROOT,
} from './paths.js';
export {
  apiEndpointFor,
  etcdTlsOn,
  membersByRole,
  ownedPaths,
  RenderCache,
  renderInstance,
  renderPlans,
  resolveCommand,
} from './render.js';
export { ADMISSION_PLUGINS } from './roles/apiserver.js';
export {
  CONTROLLER_MANAGER_PORT,
  DASHBOARD_PORT,
  LEADER_ELECTION,
  SCHEDULER_PORT,
  WORKLOAD_CONTROLLERS,
} from './roles/controllers.js';
export { customReads, customRenderDependencies, placeholderLookup } from './roles/custom.js';
export {
  ETCD_CLIENT_PORT,
  ETCD_METRICS_PORT,
  ETCD_PEER_PORT,
  etcdClientUrl,
  etcdInitialCluster,
  etcdInitialState,
  etcdMemberName,
  etcdMetricsHost,
  etcdPeerUrl,
} from './roles/etcd.js';
export { HAPROXY_CFG, haproxyConfig } from './roles/lb.js';
export {
  DEFAULT_CRI_ENDPOINT,
  KUBE_PROXY_HEALTHZ_PORT,
  KUBELET_HEALTHZ_PORT,
  KUBELET_PORT,
} from './roles/node.js';
export type {
  ApiEndpoint,
  CertRenewalExtras,
  EtcdAssignmentExtras,
  Member,
  RenderCacheLike,
  RenderContext,
  RenderedInstance,
  RenderInput,
  RenderOptions,
  RoleDefinition,
  RoleRender,
} from './types.js';
export { isParked } from './types.js';
