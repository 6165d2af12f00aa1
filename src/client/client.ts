import { abortReason, realClock, type Clock } from './clock';
import { defaultDeviceIdStore, isDeviceId, loadOrCreateDeviceId, type DeviceIdStore } from './device';
import { isRoundhouseError, RoundhouseError } from './errors';
import type { ExampleStore } from './example-store';
import { ResourceCache } from './resource-cache';
import { ExchangeDropped, SECAGG_POLL_WAIT_S, SecAggExchange, type ExchangeContext } from './secagg-task';
import { SessionRunner, type SessionOptions } from './session';
import { backoffMs, DeadlineExceeded, heldPollTransport, Transport, type RetryOptions } from './transport';
import type {
  Assignment,
  CheckinAnswer,
  ClientPlan,
  RetryWindow,
  RunOutcome,
  SessionGrant,
  SessionOutcome,
} from './types';
import type { TimeoutOptions } from './timeouts';
import { uploadBundle } from './upload';
import { runWork } from './work';

/** Options of a {@link RoundhouseClient}. */
export interface ClientOptions {
  /** Base URL of the server, e.g. `http://localhost:8080`. */
  readonly server: string;
  /** The population to check in to (a plan's `population`, by default its data collection). */
  readonly population: string;
  /** Where the examples `work` runs on come from. */
  readonly store: ExampleStore;
  /**
   * This installation's device id, sent at check-in and upload (the server allows one task per device per
   * round). Default: the one in `deviceIdStore`, made and saved there on first use.
   */
  readonly deviceId?: string;
  /** Where the device id is kept between runs (default: `localStorage` when present, else memory). */
  readonly deviceIdStore?: DeviceIdStore;
  /**
   * For servers with `DEVICE_AUTH=signed`: returns a fresh device credential (a short-lived JWT) from the
   * operator's app backend; called before every check-in and upload.
   */
  readonly deviceCredential?: () => Promise<string> | string;
  /** @deprecated The older name of `deviceId`. */
  readonly clientId?: string;
  /** Gzip uploads (default true). */
  readonly gzip?: boolean;
  /** The fetch to use (tests, custom agents); default the global fetch. */
  readonly fetch?: typeof fetch;
  /** Default: real time. */
  readonly clock?: Clock;
  /** Uniform in [0, 1): draws retry-window waits and backoff jitter. Default `Math.random`. */
  readonly random?: () => number;
  /** Retries of transient failures (network, timeouts, 5xx, 503 BUSY honouring Retry-After). */
  readonly retry?: RetryOptions;
  /**
   * How long one try of a request may take (defaults: 10 s until the server answers, 120 s in all, and an
   * upload's tries never past its task's deadline); a try that times out is retried like a network error.
   */
  readonly timeouts?: TimeoutOptions;
  /**
   * Called after `work`, before the upload: return false to drop the task (a device that went away), or
   * take a while to resolve (a straggler). The deadline is checked again after it.
   */
  readonly beforeUpload?: (a: Assignment) => Promise<boolean> | boolean;
  /**
   * Rounds with secure aggregation: called after the upload, before the unmasking step; return false to
   * leave there (a device that went away after uploading; its neighbours' shares recover its masks).
   */
  readonly beforeUnmask?: (a: Assignment) => Promise<boolean> | boolean;
  /**
   * Sessions of stateful programs: how long the server may hold a poll for requests, in seconds (default
   * and at most 30, the server's limit).
   */
  readonly sessionPollWaitS?: number;
}

/** Options of {@link RoundhouseClient.run}. */
export interface RunLoopOptions {
  readonly signal?: AbortSignal;
  /** Every check-in's outcome, in order. */
  readonly onOutcome?: (o: RunOutcome) => void;
  /**
   * A task or check-in that failed (after its retries); the loop backs off and goes on. Without this
   * callback such failures are not seen.
   */
  readonly onError?: (error: unknown, assignment?: Assignment) => void;
  /** Stop after this many tasks (assignments and sessions of stateful programs, whatever their outcome). */
  readonly maxTasks?: number;
  /**
   * Wait this long after a task before checking in again (default 0). The server gives a device at most one
   * task per round attempt, so coming straight back only earns a retry window while that round selects.
   */
  readonly pauseAfterTaskMs?: number;
}

/**
 * The client of the protocol (docs/server.md, "Protocol"): checks in as its device, downloads the client
 * plan and the round's broadcast, runs `work` on examples from its {@link ExampleStore} with the server's
 * interpreter, and uploads the result. Between tasks it keeps its device id, the rounds it served (it never
 * works on a round twice) and caches of immutable resources. Every platform dependency (fetch, clock,
 * randomness, data, device id storage) is injected, so the same code runs in Node, in browsers and in the
 * simulator.
 */
export class RoundhouseClient {
  /** This installation's device id. */
  readonly deviceId: string;
  /** The highest round of each plan this device uploaded to, and the task it uploaded for. */
  private readonly served = new Map<string, { readonly round: number; readonly task: string }>();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly transport: Transport;
  /** For the SecAgg exchange's held polls. */
  private readonly pollTransport: Transport;
  private readonly cache: ResourceCache;
  private running: AbortController | undefined;

  constructor(private readonly options: ClientOptions) {
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.transport = new Transport(fetchFn, this.clock, this.random, options.retry, options.timeouts);
    this.pollTransport = heldPollTransport(
      fetchFn,
      this.clock,
      this.random,
      options.retry,
      options.timeouts,
      SECAGG_POLL_WAIT_S,
    );
    this.cache = new ResourceCache(this.transport);
    const given = options.deviceId ?? options.clientId;
    if (given !== undefined && !isDeviceId(given)) {
      throw new Error('deviceId must be 1 to 4096 visible ASCII characters');
    }
    this.deviceId = given ?? loadOrCreateDeviceId(options.deviceIdStore ?? defaultDeviceIdStore());
  }

  /** @deprecated The older name of {@link deviceId}. */
  get clientId(): string {
    return this.deviceId;
  }

  /** Whether this device already uploaded to `round` of `plan` (or a later one); it then never works on it. */
  hasServed(plan: string, round: number): boolean {
    return (this.served.get(plan)?.round ?? 0) >= round;
  }

  /**
   * The rounds this device served, most recent first (at most 64, the server's limit), sent at check-in so
   * that the server offers no task of a round it already served.
   */
  private servedHint(): { plan_id: string; round: number }[] {
    return [...this.served]
      .reverse()
      .slice(0, 64)
      .map(([plan_id, { round }]) => ({ plan_id, round }));
  }

  /** The device credential headers: the signed credential when configured, else the device id. */
  private async credential(): Promise<string> {
    return this.options.deviceCredential ? await this.options.deviceCredential() : this.deviceId;
  }

  private exchangeContext(): ExchangeContext {
    return {
      transport: this.transport,
      pollTransport: this.pollTransport,
      pollWaitS: SECAGG_POLL_WAIT_S,
      clock: this.clock,
      random: this.random,
      credential: () => this.credential(),
    };
  }

  /** Asks for a task: an assignment, or a retry window. */
  async checkin(signal?: AbortSignal): Promise<CheckinAnswer> {
    const url = `${this.options.server.replace(/\/+$/, '')}/v1/populations/${encodeURIComponent(
      this.options.population,
    )}/checkin`;
    return this.transport.request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(this.options.deviceCredential ? { authorization: `Bearer ${await this.credential()}` } : {}),
        },
        // With a device credential the server reads the device from it: the install id stays on the device.
        body: JSON.stringify({
          ...(this.options.deviceCredential ? {} : { device_id: this.deviceId }),
          served: this.servedHint(),
        }),
      },
      { signal },
      async (res) => (await res.json()) as CheckinAnswer,
    );
  }

  /** The client plan of an assignment: fetched once per plan id, then from the cache. */
  clientPlan(a: Assignment, signal?: AbortSignal): Promise<ClientPlan> {
    // Within the task's deadline: a download that cannot finish before it is a task lost anyway.
    return this.cache.clientPlan(a.plan_id, a.client_plan_url, signal, a.deadline);
  }

  /**
   * One check-in and, when it brings an assignment, the task; when it brings a session of a stateful
   * program, the session to its end. A retry answer comes back with the wait drawn uniformly inside its
   * window; this method does not wait (`run` does).
   */
  async runOnce(signal?: AbortSignal): Promise<RunOutcome> {
    const answer = await this.checkin(signal);
    if ('retry' in answer)
      return { kind: 'retry', window: answer.retry, waitMs: this.drawWait(answer.retry) };
    if ('session' in answer)
      return { kind: 'session', session: await this.runSession(answer.session, signal) };
    return this.runTask(answer.assignment, signal);
  }

  /**
   * Runs a session of a stateful program (docs/stateful.md, "The session protocol") with this device's
   * store, transport settings and credential, to its end. Never rejects: how it ended is the outcome, and
   * aborting `signal` makes the device leave the session (outcome `left`).
   */
  runSession(grant: SessionGrant, signal?: AbortSignal): Promise<SessionOutcome> {
    const o = this.options;
    const options: SessionOptions = {
      store: o.store,
      clock: this.clock,
      random: this.random,
      credential: () => this.credential(),
      ...(o.fetch ? { fetch: o.fetch } : {}),
      ...(o.retry ? { retry: o.retry } : {}),
      ...(o.timeouts ? { timeouts: o.timeouts } : {}),
      ...(o.gzip === undefined ? {} : { gzip: o.gzip }),
      ...(o.sessionPollWaitS === undefined ? {} : { pollWaitS: o.sessionPollWaitS }),
      ...(signal ? { signal } : {}),
    };
    return new SessionRunner(grant, options).run();
  }

  /**
   * Runs one assignment: downloads, the deadline check, `work`, `beforeUpload`, the deadline check again,
   * and the upload. A 409 UPLOAD_DUPLICATE means an earlier try of this upload was accepted (its answer was
   * lost), so it counts as completed; 409 UPLOAD_LATE is the `late` outcome. Other failures throw.
   */
  async runTask(a: Assignment, signal?: AbortSignal): Promise<RunOutcome> {
    // The server gives a device one task per round attempt; a new attempt of a round this device already
    // uploaded to would count it twice in that round's population, so it is declined before any download.
    // Running the very task it uploaded for again is allowed: a lost answer is then 409 UPLOAD_DUPLICATE.
    const served = this.served.get(a.plan_id);
    if (served && served.round >= a.round && served.task !== a.task_id) {
      return { kind: 'abandoned', assignment: a, reason: 'already-served' };
    }
    if (this.clock.now() >= a.deadline) {
      return { kind: 'abandoned', assignment: a, reason: 'deadline-before-work' };
    }
    // A round that masks its secure sums: keys first (while it selects), shares once the cohort is fixed,
    // and `work` while the others do the same; the masked input is then what is uploaded.
    const exchange = a.secure_aggregation
      ? new SecAggExchange(this.exchangeContext(), { ...a, secure_aggregation: a.secure_aggregation }, signal)
      : undefined;
    let plan: ClientPlan;
    let broadcast: Uint8Array;
    try {
      await exchange?.keys();
      plan = await this.clientPlan(a, signal);
      broadcast = await this.cache.broadcast(a.broadcast_url, signal, a.deadline);
      await exchange?.share();
    } catch (e) {
      // The downloads end with the task's deadline: past it, the task is lost before any work.
      if (e instanceof DeadlineExceeded) {
        return { kind: 'abandoned', assignment: a, reason: 'deadline-before-work' };
      }
      if (e instanceof ExchangeDropped) return { kind: 'abandoned', assignment: a, reason: 'secagg-dropped' };
      throw e;
    }
    const { collection, element, batch_size } = plan.client_data;
    const examples = await this.options.store.examples(collection, element, batch_size);
    if (examples.count === 0) return { kind: 'abandoned', assignment: a, reason: 'no-examples' };
    if (this.clock.now() >= a.deadline) {
      return { kind: 'abandoned', assignment: a, reason: 'deadline-before-work' };
    }
    const update = runWork(plan, broadcast, examples, a.round);
    if (this.options.beforeUpload && !(await this.options.beforeUpload(a))) {
      return { kind: 'dropped', assignment: a };
    }
    if (signal?.aborted) throw abortReason(signal);
    if (this.clock.now() >= a.deadline) {
      return { kind: 'abandoned', assignment: a, reason: 'deadline-before-upload' };
    }
    let sent = update;
    try {
      if (exchange) sent = await exchange.mask(update, plan.upload_type);
    } catch (e) {
      if (e instanceof DeadlineExceeded)
        return { kind: 'abandoned', assignment: a, reason: 'deadline-before-upload' };
      if (e instanceof ExchangeDropped) return { kind: 'abandoned', assignment: a, reason: 'secagg-dropped' };
      throw e;
    }
    let uploadBytes: number;
    try {
      uploadBytes = await uploadBundle(this.transport, sent, a, {
        gzip: this.options.gzip,
        credential: () => this.credential(),
        signal,
      });
    } catch (e) {
      if (e instanceof DeadlineExceeded) {
        return { kind: 'abandoned', assignment: a, reason: 'deadline-before-upload' };
      }
      if (isRoundhouseError(e, 'UPLOAD_LATE')) return { kind: 'late', assignment: a };
      throw e;
    }
    if (!this.hasServed(a.plan_id, a.round)) {
      // Re-inserted so that the map stays in order of service, most recent last.
      this.served.delete(a.plan_id);
      this.served.set(a.plan_id, { round: a.round, task: a.task_id });
    }
    if (exchange && this.options.beforeUnmask && !(await this.options.beforeUnmask(a))) {
      return { kind: 'dropped', assignment: a };
    }
    try {
      // Without enough survivors' shares the server cannot take the masks off the sum: the round would fail.
      await exchange?.unmask();
    } catch (e) {
      if (e instanceof ExchangeDropped || e instanceof DeadlineExceeded) {
        return { kind: 'abandoned', assignment: a, reason: 'secagg-dropped' };
      }
      throw e;
    }
    return { kind: 'completed', assignment: a, examples: examples.count, uploadBytes };
  }

  /**
   * Checks in again and again until `signal` aborts, {@link stop} is called or `maxTasks` tasks are done:
   * a retry answer is waited out with `clock.sleep` for exactly its drawn `waitMs`. A failed task or a
   * check-in that still fails after its retries is reported to `onError` and followed by a growing backoff;
   * a check-in refused with a 4xx (a wrong population or server URL) rejects, since asking again cannot help.
   * Resolves when stopped.
   */
  async run(options: RunLoopOptions = {}): Promise<void> {
    if (options.signal?.aborted) return;
    const controller = new AbortController();
    this.running = controller;
    const { signal } = controller;
    const onOuterAbort = (): void => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    let tasks = 0;
    let failures = 0;
    try {
      while (!signal.aborted && (options.maxTasks === undefined || tasks < options.maxTasks)) {
        let answer: CheckinAnswer;
        try {
          answer = await this.checkin(signal);
        } catch (e) {
          if (signal.aborted) break;
          if (e instanceof RoundhouseError && !e.transient) throw e;
          options.onError?.(e);
          await this.clock.sleep(backoffMs(++failures, this.options.retry ?? {}, this.random), signal);
          continue;
        }
        if ('retry' in answer) {
          const outcome: RunOutcome = {
            kind: 'retry',
            window: answer.retry,
            waitMs: this.drawWait(answer.retry),
          };
          options.onOutcome?.(outcome);
          failures = 0;
          await this.clock.sleep(outcome.waitMs, signal);
          continue;
        }
        tasks++;
        let outcome: RunOutcome;
        try {
          outcome =
            'session' in answer
              ? { kind: 'session', session: await this.runSession(answer.session, signal) }
              : await this.runTask(answer.assignment, signal);
          failures = 0;
        } catch (e) {
          if (signal.aborted) break;
          options.onError?.(e, 'assignment' in answer ? answer.assignment : undefined);
          await this.clock.sleep(backoffMs(++failures, this.options.retry ?? {}, this.random), signal);
          continue;
        }
        // Outside the try above: a failing callback is the caller's bug, not a failed task to back off from.
        options.onOutcome?.(outcome);
        if (options.pauseAfterTaskMs) await this.clock.sleep(options.pauseAfterTaskMs, signal);
      }
    } catch (e) {
      // An aborted sleep or request is how the loop is told to stop; anything else is a real failure.
      if (!signal.aborted) throw e;
    } finally {
      options.signal?.removeEventListener('abort', onOuterAbort);
      if (this.running === controller) this.running = undefined;
    }
  }

  /** Stops a running {@link run} loop: its pending wait or request is aborted and it resolves. */
  stop(): void {
    this.running?.abort();
  }

  /** A wait drawn uniformly inside a retry window, in ms. */
  private drawWait(w: RetryWindow): number {
    const min = Math.max(0, w.min_seconds);
    const max = Math.max(min, w.max_seconds);
    return (min + this.random() * (max - min)) * 1000;
  }
}
