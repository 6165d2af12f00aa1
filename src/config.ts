import { DEFAULT_LIMITS, type Limits } from './compute/limits';
import { parseFaults, type FaultAction, type FaultPoint } from './faults';
import { clusterUrlFromNodes, isClusterUrl } from './runtime/redis-target';

/**
 * The server's configuration, parsed once at start-up from the environment into a frozen object and passed
 * down; nothing else reads `process.env`. Every option has a documented default (README, "Configuration").
 */
export interface Config {
  /** HTTP port of the API (`PORT`, default 8080). */
  readonly port: number;
  /** Address the API binds (`HOST`, default 0.0.0.0). */
  readonly host: string;
  /**
   * Base of the resource URLs given to clients (`PUBLIC_URL`). Unset, it is `http://localhost:<port>`, used
   * only for a request that names no host: resource URLs then follow each check-in's own scheme and Host
   * header ({@link publicUrlFromHost}), so that a client reaching the server at any address gets URLs it
   * can reach.
   */
  readonly publicUrl: string;
  /**
   * Whether resource URLs are built from each check-in request (true when `PUBLIC_URL` is unset and no
   * `publicUrl` override is given) rather than from {@link publicUrl} (src/api/resource-base.ts).
   */
  readonly publicUrlFromHost: boolean;
  /**
   * Redis URL (`REDIS_URL`); undefined means 127.0.0.1:6379 if it answers, else a private redis-server;
   * `private` asks for the private one at once (src/runtime/redis.ts). A Redis Cluster is
   * `redis+cluster://host:port,host:port`, or `REDIS_CLUSTER_NODES` (src/runtime/redis-target.ts).
   */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key and of the BullMQ queue (`REDIS_PREFIX`, default `rh`). */
  readonly redisPrefix: string;
  /**
   * Longest wait for a Redis reply, in ms (`REDIS_COMMAND_TIMEOUT_MS`, default 2000): past it a command
   * fails, and an API request answers 503 NOT_READY instead of hanging while Redis is unreachable. Not for
   * the workers' blocking fetches.
   */
  readonly redisCommandTimeoutMs: number;
  /** Bearer token of the operator endpoints (`OPERATOR_TOKEN`; default: a random one, logged at start). */
  readonly operatorToken: string;
  /** HMAC secret of task tokens (`TOKEN_SECRET`; default: random per process, fine for one API process only). */
  readonly tokenSecret: string;
  /** Largest accepted upload in bytes after decompression (`MAX_UPLOAD_BYTES`, default 64 MiB). */
  readonly maxUploadBytes: number;
  /** Largest accepted plan document in bytes (`MAX_PLAN_BYTES`, default 16 MiB). */
  readonly maxPlanBytes: number;
  /** Uploads of one round that may wait for aggregation before uploads get 503 BUSY (`MAX_PENDING_UPLOADS`, default 64). */
  readonly maxPendingUploads: number;
  /**
   * Upload bytes one API process reads at once, from each upload's Content-Length or as a chunked body
   * arrives (`MAX_INFLIGHT_UPLOAD_BYTES`, default 256 MiB); past it uploads get 503 BUSY before their body
   * is read. One upload is always admitted when no other is in flight.
   */
  readonly maxInflightUploadBytes: number;
  /**
   * Polls one API process holds at once (`?wait=` on a session's requests or a task's SecAgg step;
   * `MAX_HELD_POLLS`, default 10,000, about 100 MiB of heap); past it, and past 4 for one session or task,
   * a poll is answered at once instead of held (src/api/held-polls.ts).
   */
  readonly maxHeldPolls: number;
  /** Jobs a worker folds into its partial before committing (`WORKER_BATCH`, default 16). */
  readonly workerBatch: number;
  /** Longest a worker waits to fill a batch before committing what it has, in ms (`WORKER_BATCH_WAIT_MS`, default 50). */
  readonly workerBatchWaitMs: number;
  /**
   * How long a worker's lock on a job lasts, in ms (`WORKER_LOCK_MS`, default 30000): a killed worker's jobs
   * are redelivered once their lock expires, so this bounds how long its unacknowledged uploads wait.
   */
  readonly workerLockMs: number;
  /**
   * How often the reconciler runs, in ms (`RECONCILE_INTERVAL_MS`, default 5000): it drives rounds past their
   * deadlines, stuck in `closed`/`finalizing`, or finished without a next attempt (src/rounds/reconciler.ts).
   */
  readonly reconcileIntervalMs: number;
  /** Retry window bounds in seconds for clients told to come back (`RETRY_MIN_SECONDS` 1, `RETRY_MAX_SECONDS` 600). */
  readonly retryMinSeconds: number;
  readonly retryMaxSeconds: number;
  /**
   * The check-in rate, per second, that pace steering keeps each population under (`CHECKIN_RATE_CAP`,
   * default 1000; 0: no cap). Retry windows hold it for up to about `cap × RETRY_MAX_SECONDS / 2` devices
   * (docs/pace-steering.md).
   */
  readonly checkinRateCap: number;
  /**
   * Origins whose pages may call the client endpoints (`CORS_ORIGINS`: comma-separated, `*` for any, empty
   * for same-origin only; default `*`). Operator endpoints never answer cross-origin requests.
   */
  readonly corsOrigins: readonly string[];
  /** Interpreter limits (`LIMIT_MAX_TENSOR_ELEMENTS`, `LIMIT_MAX_OPS`, ...; defaults in docs/ir.md). */
  readonly limits: Limits;
  /** Log level (`LOG_LEVEL`, default info). */
  readonly logLevel: string;
  /** How devices are identified at check-in and upload (README, "Device credentials"). */
  readonly devices: DeviceConfig;
  /** Plan evaluation isolates (README, "Isolation of plan code"); see {@link IsolateConfig}. */
  readonly isolates: IsolateConfig;
  /** Attempts of one round before the plan is marked failed (`MAX_ROUND_ATTEMPTS`, default 10). */
  readonly maxRoundAttempts: number;
  /** Broadcasts kept per plan, the current round's and the previous ones' (`RETAIN_BROADCASTS`, default 2). */
  readonly retainBroadcasts: number;
  /** Failed attempts of one round whose hash is kept, the latest (`RETAIN_FAILED_ATTEMPTS`, default 3). */
  readonly retainFailedAttempts: number;
  /**
   * Replicas that must confirm an accepted upload and a committed partial before they are acknowledged
   * (`REDIS_WAIT_REPLICAS`; default 1 on a Redis Cluster, else 0); see `Durability` in the store.
   */
  readonly redisWaitReplicas: number;
  /** How long to wait for them, in ms (`REDIS_WAIT_TIMEOUT_MS`, default 1000). */
  readonly redisWaitTimeoutMs: number;
  /**
   * Plans (and as many stateful programs) a process keeps checked in memory, least recently used out first
   * (`PLAN_CACHE_SIZE`, default 64).
   */
  readonly planCacheSize: number;
  /**
   * Isolate faults (`EVAL_FAULT`: a crash, heap or time exhaustion, a broken backend) one round attempt
   * absorbs before they are deemed the plan's own and fail it (`EVAL_FAULT_RETRIES`, default 3); fewer are
   * retried as infrastructure faults.
   */
  readonly evalFaultRetries: number;
  /**
   * Test-only fault points to arm (`ROUNDHOUSE_FAULTS`, default none; src/faults.ts). Never set it in
   * production.
   */
  readonly faults: ReadonlyMap<FaultPoint, { at: number; action: FaultAction }>;
}

/** Where and how plan code is evaluated on the server: a pool of worker-thread isolates per process. */
export interface IsolateConfig {
  /** Isolates per process, each running one task at a time (`ISOLATE_POOL_SIZE`, default 2). */
  readonly poolSize: number;
  /** Wall-clock limit of one task, in ms (`ISOLATE_TIMEOUT_MS`, default 30000); the isolate is replaced. */
  readonly timeoutMs: number;
  /**
   * V8 old-generation heap limit of an isolate, in MiB (`ISOLATE_MAX_HEAP_MB`, default 2048). Lower limits
   * cost throughput: measured, a 512 MiB limit made a fold of 16 100k-float uploads ~1.6x slower (V8
   * collects more often under the external memory of upload buffers).
   */
  readonly maxHeapMb: number;
  /** Largest WebAssembly memory of an isolate's backend, in MiB (`ISOLATE_MAX_WASM_MB`, default 1024). */
  readonly maxWasmMb: number;
  /**
   * Test-only fault injection (`ISOLATE_TEST_FAULTS=1`, default off): a plan whose name starts with
   * `fault-<kind>-<task>[-from<round>]` makes its isolate crash, hang or abort in that task. Never set it in production.
   */
  readonly testFaults: boolean;
}

/** Device identification (README, "Device credentials"). */
export interface DeviceConfig {
  /**
   * `DEVICE_AUTH`: `anonymous` (default; the device id is the client's own random id, rate-limited per source,
   * no Sybil resistance) or `signed` (a short-lived ES256/EdDSA JWT from the operator's app backend).
   */
  readonly auth: 'anonymous' | 'signed';
  /** `DEVICE_JWKS_FILE`: a JWKS file of the issuer's public keys (signed mode; this or the URL). */
  readonly jwksFile: string | undefined;
  /** `DEVICE_JWKS_URL`: an https URL serving that JWKS, fetched and cached by the server (signed mode). */
  readonly jwksUrl: string | undefined;
  /**
   * `DEVICE_JWT_ISSUER`: the required `iss` when set (default: not checked). `DEVICE_JWT_AUDIENCE`: the
   * required `aud`, which `signed` mode needs so that no other token of the same keys passes.
   */
  readonly jwtIssuer: string | undefined;
  readonly jwtAudience: string | undefined;
  /** `DEVICE_JWT_MAX_LIFETIME_S`: longest `exp - iat` accepted (default 3600), so that credentials stay short-lived. */
  readonly jwtMaxLifetimeS: number;
  /** `ANONYMOUS_RATE_LIMIT`: check-ins per source address per window in anonymous mode (default 600; 0: off). */
  readonly anonymousRateLimit: number;
  /** `ANONYMOUS_RATE_WINDOW_S`: that window in seconds (default 60). */
  readonly anonymousRateWindowS: number;
}

function deviceConfig(env: Env): DeviceConfig {
  const auth = env.DEVICE_AUTH || 'anonymous';
  if (auth !== 'anonymous' && auth !== 'signed') {
    throw new Error(`DEVICE_AUTH must be "anonymous" or "signed", got "${auth}"`);
  }
  const devices: DeviceConfig = {
    auth,
    jwksFile: env.DEVICE_JWKS_FILE || undefined,
    jwksUrl: env.DEVICE_JWKS_URL || undefined,
    jwtIssuer: env.DEVICE_JWT_ISSUER || undefined,
    jwtAudience: env.DEVICE_JWT_AUDIENCE || undefined,
    jwtMaxLifetimeS: int(env, 'DEVICE_JWT_MAX_LIFETIME_S', 3600, 1),
    anonymousRateLimit: int(env, 'ANONYMOUS_RATE_LIMIT', 600, 0),
    anonymousRateWindowS: int(env, 'ANONYMOUS_RATE_WINDOW_S', 60, 1),
  };
  if (auth === 'signed' && !devices.jwksFile === !devices.jwksUrl) {
    throw new Error('DEVICE_AUTH=signed needs exactly one of DEVICE_JWKS_FILE and DEVICE_JWKS_URL');
  }
  // Keys fetched over plain http could be swapped in transit, and with them every device credential.
  if (devices.jwksUrl !== undefined && !/^https:\/\//.test(devices.jwksUrl)) {
    throw new Error(`DEVICE_JWKS_URL must be an https URL, got "${devices.jwksUrl}"`);
  }
  // Without an audience, any ES256/EdDSA JWT of the same issuer's keys (a session or ID token, whose "sub" is
  // a user, not a device) would pass as a device credential.
  if (auth === 'signed' && devices.jwtAudience === undefined) {
    throw new Error('DEVICE_AUTH=signed needs DEVICE_JWT_AUDIENCE, the "aud" of device credentials');
  }
  return Object.freeze(devices);
}

/** `EVAL_FAULT_RETRIES` when unset (and for callers that pass no such option). */
export const DEFAULT_EVAL_FAULT_RETRIES = 3;

type Env = Readonly<Record<string, string | undefined>>;

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

function randomSecret(): string {
  const bytes = new Uint8Array(32);
  globalThis.crypto.getRandomValues(bytes);
  return Buffer.from(bytes).toString('base64url');
}

/** Parses the configuration; throws with the variable's name on a bad value. */
export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const port = int(env, 'PORT', 8080);
  const redisUrl = env.REDIS_CLUSTER_NODES
    ? clusterUrlFromNodes(env.REDIS_CLUSTER_NODES, env.REDIS_URL || undefined)
    : env.REDIS_URL || undefined;
  const config: Config = {
    port,
    host: env.HOST || '0.0.0.0',
    publicUrl: (env.PUBLIC_URL || `http://localhost:${port}`).replace(/\/+$/, ''),
    redisUrl,
    redisPrefix: env.REDIS_PREFIX || 'rh',
    redisCommandTimeoutMs: int(env, 'REDIS_COMMAND_TIMEOUT_MS', 2000, 100),
    operatorToken: env.OPERATOR_TOKEN || randomSecret(),
    tokenSecret: env.TOKEN_SECRET || randomSecret(),
    maxUploadBytes: int(env, 'MAX_UPLOAD_BYTES', 64 << 20, 1),
    maxPlanBytes: int(env, 'MAX_PLAN_BYTES', 16 << 20, 1),
    maxPendingUploads: int(env, 'MAX_PENDING_UPLOADS', 64, 1),
    maxInflightUploadBytes: int(env, 'MAX_INFLIGHT_UPLOAD_BYTES', 256 << 20, 1),
    maxHeldPolls: int(env, 'MAX_HELD_POLLS', 10_000, 0),
    workerBatch: int(env, 'WORKER_BATCH', 16, 1),
    workerBatchWaitMs: int(env, 'WORKER_BATCH_WAIT_MS', 50, 0),
    workerLockMs: int(env, 'WORKER_LOCK_MS', 30_000, 1000),
    reconcileIntervalMs: int(env, 'RECONCILE_INTERVAL_MS', 5000, 100),
    retryMinSeconds: int(env, 'RETRY_MIN_SECONDS', 1, 0),
    retryMaxSeconds: int(env, 'RETRY_MAX_SECONDS', 600, 1),
    checkinRateCap: int(env, 'CHECKIN_RATE_CAP', 1000, 0),
    corsOrigins: Object.freeze(
      (env.CORS_ORIGINS ?? '*')
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o !== ''),
    ),
    limits: Object.freeze({
      ...DEFAULT_LIMITS,
      maxTensorElements: int(env, 'LIMIT_MAX_TENSOR_ELEMENTS', DEFAULT_LIMITS.maxTensorElements, 1),
      maxOpsExecuted: int(env, 'LIMIT_MAX_OPS', DEFAULT_LIMITS.maxOpsExecuted, 1),
      maxFoldSteps: int(env, 'LIMIT_MAX_FOLD_STEPS', DEFAULT_LIMITS.maxFoldSteps, 1),
      maxNodesPerComputation: int(env, 'LIMIT_MAX_NODES', DEFAULT_LIMITS.maxNodesPerComputation, 1),
      // The static cost model's budgets and the schedule bounds (docs/ir.md, "Cost model"; README).
      maxPeakBytes: int(env, 'LIMIT_MAX_PEAK_BYTES', DEFAULT_LIMITS.maxPeakBytes, 1),
      maxFlops: int(env, 'LIMIT_MAX_FLOPS', DEFAULT_LIMITS.maxFlops, 1),
      maxClientPeakBytes: int(env, 'LIMIT_MAX_CLIENT_PEAK_BYTES', DEFAULT_LIMITS.maxClientPeakBytes, 1),
      maxClientFlops: int(env, 'LIMIT_MAX_CLIENT_FLOPS', DEFAULT_LIMITS.maxClientFlops, 1),
      costClientBatches: int(env, 'LIMIT_COST_CLIENT_BATCHES', DEFAULT_LIMITS.costClientBatches, 1),
      scheduleMinSeconds: int(env, 'SCHEDULE_MIN_SECONDS', DEFAULT_LIMITS.scheduleMinSeconds, 0),
      scheduleMaxSeconds: int(env, 'SCHEDULE_MAX_SECONDS', DEFAULT_LIMITS.scheduleMaxSeconds, 1),
      scheduleMaxRounds: int(env, 'SCHEDULE_MAX_ROUNDS', DEFAULT_LIMITS.scheduleMaxRounds, 1),
      scheduleMaxTargetClients: int(
        env,
        'SCHEDULE_MAX_TARGET_CLIENTS',
        DEFAULT_LIMITS.scheduleMaxTargetClients,
        1,
      ),
    }),
    logLevel: env.LOG_LEVEL || 'info',
    devices: deviceConfig(env),
    isolates: Object.freeze({
      poolSize: int(env, 'ISOLATE_POOL_SIZE', 2, 1),
      timeoutMs: int(env, 'ISOLATE_TIMEOUT_MS', 30_000, 100),
      maxHeapMb: int(env, 'ISOLATE_MAX_HEAP_MB', 2048, 32),
      maxWasmMb: int(env, 'ISOLATE_MAX_WASM_MB', 1024, 32),
      testFaults: env.ISOLATE_TEST_FAULTS === '1',
    }),
    maxRoundAttempts: int(env, 'MAX_ROUND_ATTEMPTS', 10, 1),
    evalFaultRetries: int(env, 'EVAL_FAULT_RETRIES', DEFAULT_EVAL_FAULT_RETRIES, 1),
    retainBroadcasts: int(env, 'RETAIN_BROADCASTS', 2, 1),
    retainFailedAttempts: int(env, 'RETAIN_FAILED_ATTEMPTS', 3, 1),
    redisWaitReplicas: int(env, 'REDIS_WAIT_REPLICAS', redisUrl && isClusterUrl(redisUrl) ? 1 : 0, 0),
    redisWaitTimeoutMs: int(env, 'REDIS_WAIT_TIMEOUT_MS', 1000, 1),
    planCacheSize: int(env, 'PLAN_CACHE_SIZE', 64, 1),
    faults: parseFaults(env.ROUNDHOUSE_FAULTS ?? ''),
    ...overrides,
    // A caller that passes its own `publicUrl` means that URL, as if PUBLIC_URL were set.
    publicUrlFromHost: overrides.publicUrlFromHost ?? (!env.PUBLIC_URL && overrides.publicUrl === undefined),
  };
  if (config.retryMinSeconds > config.retryMaxSeconds)
    throw new Error('RETRY_MIN_SECONDS is more than RETRY_MAX_SECONDS');
  if (config.limits.scheduleMinSeconds > config.limits.scheduleMaxSeconds)
    throw new Error('SCHEDULE_MIN_SECONDS is more than SCHEDULE_MAX_SECONDS');
  return Object.freeze(config);
}
