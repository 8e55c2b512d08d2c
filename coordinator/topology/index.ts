export {
  BUILTIN_ROLE_INFO,
  BUILTIN_ROLES,
  type BuiltinRole,
  type BuiltinRoleInfo,
  isBuiltinRole,
} from './builtins.js';
export { TOPOLOGY_ERRORS, TopologyError, type TopologyProblem } from './errors.js';
export { deriveLabels, LABEL_PREFIX } from './labels.js';
export { MAX_TOPOLOGY_BYTES, parseTopology } from './parse.js';
export { formatPath } from './path.js';
export { formatBytes, parseQuantity } from './quantity.js';
export {
  LABEL_KEY_PATTERN,
  ROLE_NAME_PATTERN,
  SELECTOR_OPS,
  type SelectorOp,
  TopologySchema,
} from './schema.js';
export {
  describeRequirement,
  describeSelector,
  matchesRequirement,
  matchesSelector,
  type SelectorRequirement,
  selectorRequirements,
} from './selector.js';
export { customTexts } from './semantics.js';
export {
  checkPlaceholders,
  type PlaceholderRef,
  placeholders,
  renderTemplate,
  STATIC_PLACEHOLDERS,
} from './template.js';
export type {
  ApiEndpointMode,
  ClusterSettings,
  CustomRoleSpec,
  ProbeSpec,
  RepairPolicy,
  RestartOverrides,
  RoleSpec,
  SelectorTerm,
  Topology,
} from './types.js';
export { TOPOLOGY_DEFAULTS, validateTopology } from './validate.js';
export { etcdMemberCountWarning, topologyWarnings } from './warnings.js';
