import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../store/redis-client';
import type { Logger } from '../log/logger';
import { Keys } from '../store/keys';
import { SCRIPTS } from '../store/scripts';

/** What a worker id may be: it names Redis keys (a brace would change their hash tag). */
const WORKER_ID = /^[A-Za-z0-9_.-]{1,128}$/;

/** How long a worker id's epoch counter outlives the last renewal of its lease: longer than any attempt. */
const EPOCH_TTL_MS = 30 * 24 * 3600 * 1000;

/** Thrown by {@link WorkerLease.acquire} when another live process holds the worker id. */
export class WorkerIdTaken extends Error {
  constructor(id: string) {
    super(
      `worker id "${id}" is held by another live aggregation worker (its lease is being renewed): ` +
        "two processes may not share an id, since they would overwrite each other's partials; give each " +
        'worker its own --id, or stop the other one',
    );
    this.name = 'WorkerIdTaken';
  }
}

/** Thrown where a worker would commit without holding its id's lease, or when a commit was fenced. */
export class LeaseLost extends Error {
  constructor(id: string, why: string) {
    super(`worker ${id} does not hold its lease (${why}): it commits nothing until it holds it again`);
    this.name = 'LeaseLost';
  }
}

/** Checks a worker id; throws naming the rule. */
export function checkWorkerId(id: string): string {
  if (!WORKER_ID.test(id))
    throw new Error(`a worker id is 1 to 128 of A-Z a-z 0-9 _ . -, got ${JSON.stringify(id)}`);
  return id;
}

/**
 * The lease on an aggregation worker id (docs/server.md, "Worker leases"): a key `SET NX PX` with a random
 * token, renewed on a timer every third of its time to live by a compare-and-extend script, so that two
 * live processes never share an id (and with it a partial, where the last commit would win). Taking the
 * lease raises the id's epoch; commits carry it and `commit-partial` refuses one below the highest it saw
 * for the id in the attempt, so that a process that lost the lease without noticing (paused past its time
 * to live: a zombie) cannot overwrite what the new holder committed.
 *
 * The holder judges the lease held only until `sent + ttl - ttl/10`, `sent` being when its last successful
 * renewal was sent, which is before Redis started the new time to live: it stops committing before any other
 * process can take the id. Renewal runs on the event loop, which folds never block (they run in isolates).
 */
export class WorkerLease {
  private readonly key: string;
  private readonly epochKey: string;
  private token: string | undefined;
  private epochValue = 0;
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    /** The worker id. */
    readonly id: string,
    /** The lease's time to live, ms. */
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {
    const keys = new Keys(prefix).global;
    this.key = keys.workerLease(checkWorkerId(id));
    this.epochKey = keys.workerEpoch(id);
  }

  /** The epoch of the lease as last acquired (0 before). */
  get epoch(): number {
    return this.epochValue;
  }

  /** Whether this process may commit under the id now (judged locally, see the class comment). */
  held(): boolean {
    return this.token !== undefined && Date.now() < this.validUntil;
  }

  /**
   * Takes the lease at start-up. A lease left by a process that died lapses within its time to live, so
   * when the id is held this waits that long once: a live holder renews it meanwhile, and then this throws
   * {@link WorkerIdTaken}. Starts the renewal timer.
   */
  async acquire(): Promise<void> {
    const first = await this.tryTake();
    if (first !== true) {
      this.log.warn(
        { worker: this.id, wait_ms: first },
        'worker id is leased; waiting once for the lease to lapse in case its holder died',
      );
      await new Promise((r) => setTimeout(r, first + 100));
      if ((await this.tryTake()) !== true) throw new WorkerIdTaken(this.id);
    }
    this.startRenewing();
  }

  /**
   * Takes the lease again after losing it: extends it if this process's token still holds it (Redis was out
   * of reach for a while, nobody took it; the epoch stays), else takes it if it is free (a new epoch).
   * Resolves with whether the lease is held.
   */
  async reacquire(): Promise<boolean> {
    if (this.token !== undefined && (await this.extend())) return true;
    return (await this.tryTake()) === true;
  }

  /** Marks the lease lost at once (a commit was fenced): `held()` answers false until it is taken again. */
  markLost(): void {
    this.validUntil = 0;
  }

  /** Stops renewing and gives the lease up (best effort: otherwise it lapses after its time to live). */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const token = this.token;
    this.token = undefined;
    this.validUntil = 0;
    if (token === undefined) return;
    try {
      await SCRIPTS.releaseLease.run(this.redis, [this.key], [token]);
    } catch (err) {
      this.log.warn({ err, worker: this.id }, 'could not release the worker lease; it lapses on its own');
    }
  }

  /** One SET NX; true when taken, else how many ms the holder's lease has left. */
  private async tryTake(): Promise<true | number> {
    const token = randomBytes(16).toString('hex');
    const sent = Date.now();
    const [taken, n] = (await SCRIPTS.acquireLease.run(
      this.redis,
      [this.key, this.epochKey],
      [token, this.ttlMs, EPOCH_TTL_MS],
    )) as [number, number];
    if (taken !== 1) return Math.max(0, Math.min(Number(n), this.ttlMs));
    this.token = token;
    this.epochValue = Number(n);
    this.validUntil = this.until(sent);
    this.log.info({ worker: this.id, epoch: this.epochValue }, 'worker lease taken');
    return true;
  }

  /** Extends the lease if this process's token holds it; false otherwise (the lease is then lost). */
  private async extend(): Promise<boolean> {
    const token = this.token;
    if (token === undefined) return false;
    const sent = Date.now();
    const ok = await SCRIPTS.renewLease.run(
      this.redis,
      [this.key, this.epochKey],
      [token, this.ttlMs, EPOCH_TTL_MS],
    );
    if (this.token !== token) return false; // released meanwhile
    if (Number(ok) === 1) {
      this.validUntil = this.until(sent);
      return true;
    }
    if (this.validUntil > 0)
      this.log.error({ worker: this.id }, 'worker lease lost: another process holds the id, or it expired');
    this.validUntil = 0;
    return false;
  }

  private startRenewing(): void {
    this.timer ??= setInterval(() => void this.renew(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    // A renewal stuck on a Redis that does not answer must not pile others up behind it.
    if (this.renewing || !this.held()) return;
    this.renewing = true;
    try {
      await this.extend();
    } catch (err) {
      // Redis out of reach: the lease is judged held until `validUntil`, then lost.
      this.log.warn({ err, worker: this.id }, 'could not renew the worker lease');
    } finally {
      this.renewing = false;
    }
  }

  /** Until when a lease renewed (or taken) by a request sent at `sent` is judged held. */
  private until(sent: number): number {
    return sent + this.ttlMs - Math.floor(this.ttlMs / 10);
  }
}
