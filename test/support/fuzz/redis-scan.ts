/**
 * A scanner of everything a Redis prefix holds at rest, for the "nothing per client at rest" test: it reads
 * every key of the store (`P:*`) and of its BullMQ queue (`{P}:*`) whatever its type, and checks each
 * key name and value against what must never be stored: a plain hash of an upload, a committed partial
 * that covers fewer devices than the plan's minimum while its round attempt still takes uploads, a device
 * id whose round attempt has ended.
 *
 * Partials below the minimum: issue 7 (point 4) lets a worker commit one "only when it covers at least
 * min_clients_in_aggregate devices, or when the round closes", because the finalizer (another process)
 * must merge it and nothing more can be added to it. So a sub-minimum partial is a violation when its
 * attempt is `selecting` or `reporting` both before and after the partial is read (phases only move
 * forward, so it was open throughout); seen in a closed attempt it is counted in `closedSubMinimum`, and
 * the test checks that nothing of a finished attempt remains.
 */
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';
import { decodePartial, PARTIAL_FORMAT } from '../../../src/aggregation/partial';
import { disposeValue } from '../../../src/compute/value';
import type { FormTypes } from '../../../src/plan/validate';
import type { SecureParams } from '../../../src/rounds/form-steps';

/** One thing found at rest that must not be there. */
export interface AtRestViolation {
  readonly key: string;
  readonly what: string;
}

/** The forms a hash of an upload could be stored in: hex, base64, base64url and the raw 32 bytes. */
export function digestForms(upload: Uint8Array): Buffer[] {
  const digest = createHash('sha256').update(upload).digest();
  return [
    Buffer.from(digest.toString('hex')),
    Buffer.from(digest.toString('hex').toUpperCase()),
    Buffer.from(digest.toString('base64')),
    Buffer.from(digest.toString('base64url')),
    digest,
  ];
}

/** What the scanner looks for; the sets may grow while it runs. */
export interface ScanRules {
  /** The plan's types and secure-sum parameters, to decode its partials. */
  readonly types: Pick<FormTypes, 'A' | 'V'>;
  readonly params: SecureParams;
  /** The fewest clients a committed partial may cover (`min_clients_in_aggregate`). */
  readonly minClients: number;
  /** Digest forms of every upload so far ({@link digestForms}). */
  readonly uploadDigests: Buffer[];
  /** Device ids whose round attempt has ended. */
  readonly endedDevices: Set<string>;
}

/** Counts of what one or more scans read, so that a test can show the scanner saw the round's keys. */
export interface ScanStats {
  scans: number;
  keys: number;
  values: number;
  partials: number;
  /** Client counts of the partials decoded. */
  partialClients: number[];
  /** Client counts of the partials decoded while their attempt took uploads (a subset of the above). */
  openPartialClients: number[];
  /** Sub-minimum partials seen after their attempt closed (allowed; see above). */
  closedSubMinimum: number;
  keyNames: Set<string>;
}

export function newScanStats(): ScanStats {
  return {
    scans: 0,
    keys: 0,
    values: 0,
    partials: 0,
    partialClients: [],
    openPartialClients: [],
    closedSubMinimum: 0,
    keyNames: new Set(),
  };
}

const PARTIAL_MARKER = Buffer.from(PARTIAL_FORMAT);

/** Every value of a key as buffers (hash fields and stream field names included); [] if it vanished. */
async function readKey(redis: Redis, key: string): Promise<Buffer[]> {
  const type = await redis.type(key);
  switch (type) {
    case 'string': {
      // The key may be deleted between TYPE and GET (a round closing): then there is nothing at rest.
      const value = await redis.getBuffer(key);
      return value === null ? [] : [value];
    }
    case 'hash': {
      // Field names as buffers too: a hash keyed by something per client is as bad as a value.
      const fields = await redis.hkeysBuffer(key);
      const values = fields.length ? await redis.hmgetBuffer(key, ...fields) : [];
      return [...fields, ...values.filter((v): v is Buffer => v !== null)];
    }
    case 'set':
      return redis.smembersBuffer(key);
    case 'list':
      return redis.lrangeBuffer(key, 0, -1);
    case 'zset':
      return redis.zrangeBuffer(key, 0, -1, 'WITHSCORES');
    case 'stream': {
      const entries = (await redis.xrangeBuffer(key, '-', '+')) as unknown as Array<[Buffer, Buffer[]]>;
      return entries.flatMap(([id, fields]) => [id, ...fields]);
    }
    case 'none':
      return [];
    default:
      return [Buffer.from(`unreadable type ${type}`)];
  }
}

/** The phases in which a round attempt still takes uploads. */
const OPEN = new Set(['selecting', 'reporting']);

/** The phase of the round attempt a key belongs to (`P:{plan}:r:<n.a>...`), or undefined. */
async function phaseOf(redis: Redis, key: string): Promise<string | undefined> {
  const m = /^(.*:r:\d+\.\d+)(?::|$)/.exec(key);
  return m ? ((await redis.hget(m[1]!, 'phase')) ?? undefined) : undefined;
}

/**
 * Checks one value; returns the violations it holds. `open` says whether the key's round attempt took
 * uploads before and after the value was read (true when the key belongs to no attempt).
 */
export function checkValue(
  key: string,
  value: Buffer,
  rules: ScanRules,
  stats: ScanStats,
  open = true,
): string[] {
  const found: string[] = [];
  for (const d of rules.uploadDigests) {
    if (value.includes(d))
      found.push(`holds the SHA-256 of an upload (${d.length === 32 ? 'raw' : d.toString()})`);
  }
  for (const device of rules.endedDevices) {
    if (value.includes(device)) found.push(`holds device id ${device} after its round attempt ended`);
  }
  if (/:partial:/.test(key) || value.includes(PARTIAL_MARKER)) {
    try {
      const partial = decodePartial(new Uint8Array(value), rules.types, rules.params);
      disposeValue(partial.acc);
      stats.partials += 1;
      stats.partialClients.push(partial.clients);
      if (open) stats.openPartialClients.push(partial.clients);
      if (partial.clients < rules.minClients) {
        if (open) {
          found.push(`a committed partial covering ${partial.clients} clients (minimum ${rules.minClients})`);
        } else {
          stats.closedSubMinimum += 1;
        }
      }
    } catch (err) {
      // Only a partial bundle carries the marker; one that does not decode cannot be shown to be safe.
      found.push(`a partial-like value that does not decode: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return found;
}

/** One pass over every key of the store and of its queue. */
export async function scanOnce(
  redis: Redis,
  prefix: string,
  rules: ScanRules,
  stats: ScanStats,
): Promise<AtRestViolation[]> {
  const violations: AtRestViolation[] = [];
  for (const pattern of [`${prefix}:*`, `{${prefix}}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        stats.keys += 1;
        stats.keyNames.add(key.replace(/[0-9a-f]{8,}/g, '<id>'));
        for (const device of rules.endedDevices) {
          if (key.includes(device))
            violations.push({ key, what: `key names device ${device} after its round ended` });
        }
        const before = await phaseOf(redis, key);
        const values = await readKey(redis, key);
        const after = await phaseOf(redis, key);
        const open = before === undefined || (OPEN.has(before) && after !== undefined && OPEN.has(after));
        for (const value of values) {
          stats.values += 1;
          for (const what of checkValue(key, value, rules, stats, open)) violations.push({ key, what });
        }
      }
    } while (cursor !== '0');
  }
  stats.scans += 1;
  return violations;
}
