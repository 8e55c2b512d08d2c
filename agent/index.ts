export type { AgentDeps, AgentState } from './agent.js';
export { Agent } from './agent.js';
export type { ApplierOptions, ApplyChanges, ApplyOutcome } from './applier.js';
export { Applier, filePathUnderRoot, makeExpander, ROOT_VAR } from './applier.js';
export type { AgentErrorCode } from './errors.js';
export { AGENT_ERRORS, AGENT_ERRORS_OWN, AgentError, errorBody, IllegalStateError } from './errors.js';
export type { BinaryProbeOptions, CollectFactsOptions, FactsSource } from './facts.js';
export {
  collectDisks,
  collectFacts,
  factsKey,
  findBinary,
  parseVersion,
  probeBinaries,
  ROLE_BINARIES,
  systeminformationSource,
} from './facts.js';
export type { Identity } from './identity.js';
export { defaultAdvertiseAddress, hostMacs, resolveIdentity } from './identity.js';
export { KeyPin } from './keys.js';
export type { AgentOptions, CompileAgentOptionsInput } from './options.js';
export {
  AgentConfig,
  compileAgentOptions,
  DEFAULT_CONFIG_FILE,
  DEFAULT_DATA_DIR,
  DEFAULT_FACTS_MS,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_LOG_MAX_BYTES,
  DEFAULT_NATS_SERVERS,
  DEFAULT_ROOT_DIR,
  DEFAULT_UNIT_DIR,
  describeAgentOptions,
} from './options.js';
export type { AppliedRef } from './plan-guard.js';
export { checkPlan } from './plan-guard.js';
export type { Health, ProbeResult, ProberOptions } from './probes.js';
export { Prober, runProbe } from './probes.js';
export type { ProcessRuntimeOptions } from './runtime/process.js';
export { ProcessRuntime } from './runtime/process.js';
export { isSameProcessAlive, processStartTime, readProcStat } from './runtime/procfs.js';
export type { SystemdRuntimeOptions } from './runtime/systemd.js';
export { parseShow, quoteExecArg, renderUnit, SystemdRuntime, unitNameFor } from './runtime/systemd.js';
export type {
  RunnableInstance,
  Runtime,
  RuntimeInstanceStatus,
  RuntimeListener,
  RuntimeState,
} from './runtime/types.js';
export { DEFAULT_STOP_TIMEOUT_MS, runnableFrom, safeInstanceName } from './runtime/types.js';
export type { SessionCounters, SessionHandlers, SessionOptions, SessionState } from './session.js';
export { natsConnectionOptions, reconnectDelay, Session } from './session.js';
export type { PlanInfo } from './status.js';
export { buildInstanceStatus, healthDigest, instancePhase, statusDigest } from './status.js';
export type { TaskContext } from './tasks.js';
export { runTask } from './tasks.js';
