export { type EdgeIdentity, type IdentityResult, identityFromSubject, identityName, type PeerSubject, publishProblem, siteUpWildcard, subscribeProblem } from './acl.js';
export {
  type BrokerRejection,
  type BrokerRejectReason,
  type BrokerTlsOptions,
  DEFAULT_BROKER_OPTIONS,
  EmbeddedBroker,
  type EmbeddedBrokerOptions,
} from './broker.js';
export {
  CONFLICT_CHOICES,
  CONFLICT_RESOLUTION_LIMITS,
  type ConflictChoice,
  type ConflictEntry,
  type ConflictFilter,
  type ConflictProblem,
  type ConflictResolution,
  ConflictResolutionError,
  type ConflictSide,
  type ConflictTarget,
  conflictVariant,
  listConflicts,
  readConflicts,
  type RecordSummary,
  resolveConflicts,
  resolveStoredConflicts,
  summarizeRecord,
} from './conflicts.js';
export { DEFAULT_DUPLICATE_DEVICE_ID_OPTIONS, type DuplicateDeviceIdOptions, DuplicateReleaseError, type DuplicateReleaseProblem } from './duplicate-device-id.js';
export { ACL_PROBE_KIND, DEFAULT_EDGE_OPTIONS, EdgeNode, type EdgeNodeOptions } from './edge-node.js';
export { IngestIdentityInUseError, IngestIdentityLock, ingestIdentityLockHolder, ingestIdentityLockPath } from './ingest-identity-lock.js';
export {
  type CommitInput,
  type CommitResult,
  type ConflictRecord,
  DUPLICATE_RELEASE_LIMITS,
  type DuplicateRelease,
  EDGE_MIGRATIONS,
  type EdgeStats,
  EdgeStore,
  edgeDatabasePath,
  readEdgeStats,
  releaseDuplicate,
  releaseStoredDuplicate,
  SEQ_CONFLICT,
} from './edge-store.js';
export { type AckPublisher, Ingest, type IngestOutcome } from './ingest.js';
export {
  DEFAULT_MOSQUITTO_PORT,
  DYNSEC_FILE,
  MOSQUITTO_FILES,
  type MosquittoConfigInput,
  MosquittoConfigError,
  mosquittoAclText,
  mosquittoConfigText,
  type WriteMosquittoConfigOptions,
  type WrittenMosquittoConfig,
  writeMosquittoConfig,
} from './mosquitto-config.js';
export {
  blockCommands,
  DYNSEC_BLOCKED_ROLE,
  DYNSEC_CONTROL_TOPIC,
  DYNSEC_PLUGIN_PATHS,
  DYNSEC_RESPONSE_TOPIC,
  type DynsecCommand,
  dynsecConfigText,
  MosquittoDeviceBlocker,
  type MosquittoDeviceBlockerOptions,
  unblockCommands,
} from './mosquitto-dynsec.js';
