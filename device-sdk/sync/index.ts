export { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
export {
  type BatchLimits,
  BatchRejectedError,
  type BuildBatchInput,
  buildBatch,
  COMPRESS_ABOVE_BYTES,
  DEFAULT_BATCH_LIMITS,
  openBatch,
  type ReceivedBatch,
  type RejectReason,
} from './batch.js';
export {
  CertificateClockError,
  CertificateRefusedError,
  type ClockCertificate,
  type ClockSuspect,
  type ClockValidity,
  diagnoseClockFailure,
  diagnoseRefusedCertificate,
  SYNC_CERTIFICATE_REFUSED,
  SYNC_CLOCK_INVALID,
  type ValidityWindow,
} from './tls-clock.js';
export { downTopic, isTopicSegment, type ParsedUpTopic, parseUpTopic, TOPIC_ROOT, UP_WILDCARD, upTopic } from './topics.js';
export { DEFAULT_UPLINK_OPTIONS, disableNagle, SYNC_ACCESS_REFUSED, Uplink, type UplinkEvents, type UplinkOptions, type UplinkState } from './uplink.js';
