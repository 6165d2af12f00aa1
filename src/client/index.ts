/**
 * The Roundhouse client SDK, browser-safe: it reaches the shared codec, types, data helpers and
 * interpreter, never server runtime code. Node-only helpers (a CSV file store) are in `./node`.
 */
export { RoundhouseClient, type ClientOptions, type RunLoopOptions } from './client';
export { realClock, scaledClock, type Clock } from './clock';
export {
  defaultDeviceIdStore,
  LocalStorageDeviceIdStore,
  MemoryDeviceIdStore,
  newDeviceId,
  type DeviceIdStore,
  type KeyValueStorage,
} from './device';
export {
  errorFromResponse,
  isRoundhouseError,
  parseRetryAfter,
  RoundhouseError,
  type ClientErrorCode,
} from './errors';
export { emptyExamples, MemoryExampleStore, PageExampleStore, type ExampleStore } from './example-store';
export { clientProgramProblem, runSession, SessionRunner, type SessionOptions } from './session';
export { DEFAULT_TIMEOUTS, type TimeoutOptions } from './timeouts';
export { backoffMs, DEFAULT_RETRY, type RetryOptions } from './transport';
export type {
  AbandonReason,
  Assignment,
  CheckinAnswer,
  ClientPlan,
  RetryWindow,
  RunOutcome,
  SessionGrant,
  SessionOutcome,
} from './types';
export { uploadBundle, type UploadOptions, type UploadTarget } from './upload';
export { gzipBytes, runWork } from './work';
export type { ClientExamples } from '../data';
