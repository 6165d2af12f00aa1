/**
 * Test support for test/secagg-privacy.test.ts: a record of everything the server of a round receives and
 * holds. A fetch wrapper keeps each request a client sends (its body decompressed, as the server reads it)
 * with the answer; a recorder reads every key of a cluster's prefix over and over while the round runs and
 * keeps each distinct entry it saw (a hash field with its value, a list or set member, a string); the
 * requests sorted by client and step of the exchange.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type Redis from 'ioredis';
import { KEY_BYTES, SEALED_SHARE_BYTES, SHARE_BYTES } from '../../src/secagg/crypto';
import { fromBase64Url, type R1Shares, type R3Unmask } from '../../src/secagg/protocol';

/** One request a client sent, with the server's answer. */
export interface Sent {
  readonly client: number;
  readonly method: string;
  readonly url: string;
  /** The body as the server reads it (gunzipped when sent with `content-encoding: gzip`). */
  readonly body?: Uint8Array;
  readonly status: number;
  readonly answer: Uint8Array;
}

/** A fetch for client `client` that appends every request it passes on to `log`. */
export function recordingFetch(client: number, log: Sent[]): typeof fetch {
  const wrapped = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(input, init);
    const answer = new Uint8Array(await res.clone().arrayBuffer());
    let body: Uint8Array | undefined;
    if (typeof init.body === 'string') body = new TextEncoder().encode(init.body);
    else if (init.body instanceof Uint8Array) body = init.body;
    else if (init.body !== undefined && init.body !== null) throw new Error('a body of an unexpected kind');
    if (body && new Headers(init.headers).get('content-encoding') === 'gzip') body = gunzipSync(body);
    log.push({ client, method: init.method ?? 'GET', url: String(input), body, status: res.status, answer });
    return res;
  };
  return wrapped as typeof fetch;
}

/** One entry of a key as the recorder read it. */
export interface Stored {
  readonly key: string;
  /** The hash field or the stream entry field the value belongs to. */
  readonly field?: string;
  readonly value: Buffer;
  /**
   * Whether the key's round attempt took part in the exchange or uploads before and after a read of this
   * entry (true outside any attempt).
   */
  readonly open: boolean;
}

/** The phases in which a round attempt takes uploads. */
const OPEN = new Set(['selecting', 'sharing', 'reporting']);

/** Reads every key under `prefix` (the store's `P:*` and BullMQ's `{P}:*`) until stopped. */
export class RedisRecorder {
  private readonly seen = new Map<string, Stored>();
  private running = false;
  private loop: Promise<void> | undefined;
  scans = 0;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        await this.scanOnce();
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
  }

  /** Stops after one more full scan. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.scanOnce();
  }

  /** Every distinct entry seen. */
  entries(): Stored[] {
    return [...this.seen.values()];
  }

  private async scanOnce(): Promise<void> {
    for (const pattern of [`${this.prefix}:*`, `{${this.prefix}}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const before = await this.phaseOf(key);
          const entries = await this.read(key);
          const after = await this.phaseOf(key);
          const open = before === undefined || (OPEN.has(before) && after !== undefined && OPEN.has(after));
          for (const [field, value] of entries) this.keep({ key, field, value, open });
        }
      } while (cursor !== '0');
    }
    this.scans += 1;
  }

  private keep(entry: Stored): void {
    const id = createHash('sha256')
      .update(`${entry.key}\0${entry.field ?? ''}\0`)
      .update(entry.value)
      .digest('hex');
    const known = this.seen.get(id);
    // An entry seen while its attempt was open counts as open.
    if (!known || (entry.open && !known.open)) this.seen.set(id, entry);
  }

  /** The phase of the round attempt a key belongs to (`P:{plan}:r:<n.a>...`), or undefined. */
  private async phaseOf(key: string): Promise<string | undefined> {
    const m = /^(.*:r:\d+\.\d+)(?::|$)/.exec(key);
    return m ? ((await this.redis.hget(m[1]!, 'phase')) ?? undefined) : undefined;
  }

  /** A key's entries as [field, value]; [] if it vanished. */
  private async read(key: string): Promise<[string | undefined, Buffer][]> {
    const type = await this.redis.type(key);
    const plain = (values: Buffer[]): [undefined, Buffer][] => values.map((v) => [undefined, v]);
    switch (type) {
      case 'string': {
        // Deleted between TYPE and GET (a worker's commit deletes the uploads it covers): nothing to keep.
        const value = await this.redis.getBuffer(key);
        return value === null ? [] : plain([value]);
      }
      case 'hash': {
        const all = await this.redis.hgetallBuffer(key);
        // A field name is stored as much as its value: it is checked as a value of its own too.
        return Object.entries(all).flatMap(([f, v]): [string | undefined, Buffer][] => [
          [f, v],
          [undefined, Buffer.from(f)],
        ]);
      }
      case 'set':
        return plain(await this.redis.smembersBuffer(key));
      case 'list':
        return plain(await this.redis.lrangeBuffer(key, 0, -1));
      case 'zset':
        return plain(await this.redis.zrangeBuffer(key, 0, -1, 'WITHSCORES'));
      case 'stream': {
        const entries = (await this.redis.xrangeBuffer(key, '-', '+')) as unknown as [Buffer, Buffer[]][];
        return entries.flatMap(([id, fields]) => {
          const out: [string | undefined, Buffer][] = [[undefined, id]];
          for (let f = 0; f + 1 < fields.length; f += 2) out.push([fields[f]!.toString(), fields[f + 1]!]);
          return out;
        });
      }
      case 'none':
        return [];
      default:
        throw new Error(`${key} has a type the recorder cannot read: ${type}`);
    }
  }
}

/** What each client sent of the exchange, by kind, with its cohort index and task. */
export interface ClientTrail {
  index: number;
  task: string;
  keys?: string;
  shares?: R1Shares;
  upload?: Uint8Array;
  unmask?: R3Unmask;
}

const json = <T>(bytes: Uint8Array): T => JSON.parse(Buffer.from(bytes).toString()) as T;
/** The route of a request's URL past its resource id: `/checkin`, `/secagg/keys`, `/result`. */
export const routeOf = (url: string): string => new URL(url).pathname.replace(/^\/v1\/\w+\/[^/]+/, '');

/**
 * Sorts the requests of clients 0..clients-1 into their trails, checking that each key is 32 bytes, each
 * envelope and share of its size; a body sent to any other route is a problem.
 */
export function trails(sent: readonly Sent[], clients: number, problems: string[]): ClientTrail[] {
  const out = Array.from({ length: clients }, (): ClientTrail => ({ index: -1, task: '' }));
  for (const s of sent) {
    const trail = out[s.client]!;
    const kind = routeOf(s.url);
    if (kind === '/checkin') {
      trail.task = json<{ assignment: { task_id: string } }>(s.answer).assignment.task_id;
    } else if (kind === '/secagg/keys') {
      trail.index = json<{ index: number }>(s.answer).index;
      const { keys } = json<{ keys: { c: string; s: string } }>(s.body!);
      fromBase64Url(keys.c, KEY_BYTES, 'c');
      fromBase64Url(keys.s, KEY_BYTES, 's');
      trail.keys = `${keys.c}.${keys.s}`;
    } else if (kind === '/secagg/shares') {
      trail.shares = json<R1Shares>(s.body!);
      trail.shares.shares.forEach((e) => fromBase64Url(e.ct, SEALED_SHARE_BYTES, 'ct'));
    } else if (kind === '/result') {
      trail.upload = s.body!;
    } else if (kind === '/secagg/unmask') {
      trail.unmask = json<R3Unmask>(s.body!);
      trail.unmask.shares.forEach((e) => fromBase64Url(e.share, SHARE_BYTES, 'share'));
    } else if (s.body) {
      problems.push(`client ${s.client} sent a body to ${kind}`);
    }
  }
  return out;
}
