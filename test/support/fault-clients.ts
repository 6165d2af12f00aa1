/**
 * Simulated clients for the fault-injection suite, at the level of raw HTTP (as test/support/raw-client.ts)
 * but persistent as a real client is: a check-in is repeated after the retry window (scaled down) until
 * the device is assigned, and an upload is repeated with its token, against the next API process when one
 * does not answer, until the server says it has it (202, or 409 UPLOAD_DUPLICATE for an earlier try whose
 * answer was lost). Every answer is recorded, so that a test can assert what the clients saw.
 */
import { vectorUpload } from './plans';
import type { RawAssignment } from './raw-client';

/** One request of a simulated client and what came back. */
export interface Exchange {
  readonly what: 'checkin' | 'upload';
  /** The HTTP status, or `network` when no answer came (refused, reset, timed out). */
  readonly status: number | 'network';
  readonly code?: string;
  readonly retryAfter?: string;
  /** From sending the request to the end of the answer. */
  readonly ms: number;
  readonly server: string;
  readonly error?: string;
}

/** What the clients of a test saw. */
export class Exchanges {
  readonly all: Exchange[] = [];

  add(e: Exchange): void {
    this.all.push(e);
  }

  /** Answers with a 5xx status. */
  serverErrors(): Exchange[] {
    return this.all.filter((e) => typeof e.status === 'number' && e.status >= 500);
  }

  /** A count per `what status code`, for messages. */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.all) {
      const k = `${e.what} ${e.status}${e.code ? ` ${e.code}` : ''}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }
}

/** How simulated clients behave. */
export interface ClientOptions {
  /** The API processes to talk to, in order of preference (read at each try: processes come and go). */
  readonly servers: () => readonly string[];
  readonly exchanges?: Exchanges;
  /** A client gives up (and the test fails) after this long, in ms (default 90 s). */
  readonly patienceMs?: number;
  /** Multiplies the server's retry windows and Retry-After (default 0.05: tests do not wait seconds). */
  readonly waitScale?: number;
  /** A request with no complete answer after this long counts as `network` (default 30 s). */
  readonly requestTimeoutMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function exchange(
  what: Exchange['what'],
  url: string,
  init: RequestInit,
  options: ClientOptions,
): Promise<{ e: Exchange; body: unknown }> {
  const t0 = Date.now();
  const server = new URL(url).origin;
  let e: Exchange;
  let body: unknown;
  try {
    const res = await fetch(url, {
      ...init,
      signal: AbortSignal.timeout(options.requestTimeoutMs ?? 30_000),
    });
    const text = await res.text();
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    const code = (body as { error?: { code?: string } } | undefined)?.error?.code;
    const retryAfter = res.headers.get('retry-after') ?? undefined;
    e = {
      what,
      status: res.status,
      ms: Date.now() - t0,
      server,
      ...(code ? { code } : {}),
      ...(retryAfter ? { retryAfter } : {}),
    };
  } catch (err) {
    e = { what, status: 'network', ms: Date.now() - t0, server, error: String(err) };
  }
  options.exchanges?.add(e);
  return { e, body };
}

/** The server to use at try `n`: the preferred one first, the others in turn while tries fail. */
function serverAt(options: ClientOptions, n: number): string {
  const servers = options.servers();
  if (servers.length === 0) throw new Error('no API process to talk to');
  return servers[n % servers.length]!;
}

/**
 * Checks in as `device` until it is assigned a task (of round `round` when given: an assignment of an
 * earlier round fails the test, since these tests open a round only when the one before completed).
 */
export async function checkinUntilAssigned(
  population: string,
  device: string,
  options: ClientOptions,
  round?: number,
): Promise<RawAssignment> {
  const until = Date.now() + (options.patienceMs ?? 90_000);
  const scale = options.waitScale ?? 0.05;
  for (let n = 0; ; n++) {
    if (Date.now() > until) throw new Error(`device ${device} was not assigned a task in time`);
    const server = serverAt(options, n);
    const { e, body } = await exchange(
      'checkin',
      `${server}/v1/populations/${population}/checkin`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ device_id: device }),
      },
      options,
    );
    if (e.status === 200) {
      const answer = body as {
        assignment?: RawAssignment;
        retry?: { min_seconds: number; max_seconds: number };
      };
      if (answer.assignment) {
        if (round !== undefined && answer.assignment.round !== round) {
          throw new Error(`device ${device} was assigned round ${answer.assignment.round}, not ${round}`);
        }
        return { ...answer.assignment, device };
      }
      const w = answer.retry!;
      const s = w.min_seconds + Math.random() * (w.max_seconds - w.min_seconds);
      await sleep(Math.min(1000, Math.max(20, s * 1000 * scale)));
      continue;
    }
    await sleep(afterFailure(e, scale));
  }
}

/** How long to wait after an answer that is not final: Retry-After (scaled) or a short pause. */
function afterFailure(e: Exchange, scale: number): number {
  if (e.retryAfter !== undefined) return Math.min(1000, Math.max(50, Number(e.retryAfter) * 1000 * scale));
  return e.status === 'network' ? 100 : 200;
}

/** How an upload ended: the last answer, and whether the server has the upload. */
export interface UploadResult {
  readonly accepted: boolean;
  readonly final: Exchange;
  readonly tries: number;
}

/**
 * Uploads `body` under an assignment until the server has it: 202, or 409 UPLOAD_DUPLICATE (a try whose
 * answer was lost was stored). Network failures, 5xx and 503 are tried again (the next try goes to the next
 * server when there are several); any other answer is final and returned as not accepted.
 */
export async function uploadUntilAccepted(
  a: RawAssignment,
  body: Uint8Array,
  options: ClientOptions,
): Promise<UploadResult> {
  const until = Date.now() + (options.patienceMs ?? 90_000);
  const scale = options.waitScale ?? 0.05;
  const path = new URL(a.upload_url).pathname;
  for (let n = 0; ; n++) {
    const { e } = await exchange(
      'upload',
      `${serverAt(options, n)}${path}`,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${a.token}`,
          'content-type': 'application/octet-stream',
          ...(a.device !== undefined ? { 'x-device-credential': a.device } : {}),
        },
        body: body as BodyInit,
      },
      options,
    );
    if (e.status === 202) return { accepted: true, final: e, tries: n + 1 };
    if (e.status === 409 && e.code === 'UPLOAD_DUPLICATE') return { accepted: true, final: e, tries: n + 1 };
    if (e.status !== 'network' && e.status < 500) return { accepted: false, final: e, tries: n + 1 };
    if (Date.now() > until) {
      throw new Error(
        `the upload of device ${a.device} was not accepted in time; last: ${JSON.stringify(e)}`,
      );
    }
    await sleep(afterFailure(e, scale));
  }
}

/** A vector-sum client's update in round `round`: small integers, so that every float32 sum is exact. */
export function clientDelta(k: number, client: number, round: number): Float32Array {
  return Float32Array.from({ length: k }, (_, j) => (client * 7 + j * 3 + round) % 11);
}

export const sumOf = (values: Float32Array): number => values.reduce((a, b) => a + b, 0);

/** What one round of {@link runClients} did. */
export interface RoundRun {
  /** The sum of every accepted upload's values: what the round's output `total` must be. */
  readonly total: number;
  /** Uploads the server has (202 or UPLOAD_DUPLICATE). */
  readonly accepted: number;
  /** Uploads refused for good, with the answer. */
  readonly refused: Exchange[];
}

/**
 * Runs `devices` through one round of a vector-sum plan (check in, upload `clientDelta`), `concurrency` at
 * a time; `onAccepted` runs after each accepted upload (a test kills things there).
 */
export async function runClients(params: {
  readonly population: string;
  readonly round: number;
  readonly k: number;
  readonly devices: readonly string[];
  /** The client number of `devices[0]` (its `clientDelta`); the others follow (default 0). */
  readonly first?: number;
  readonly options: ClientOptions;
  readonly concurrency?: number;
  readonly onAccepted?: (accepted: number) => void | Promise<void>;
}): Promise<RoundRun> {
  const { population, round, k, devices, options } = params;
  let total = 0;
  let accepted = 0;
  const refused: Exchange[] = [];
  let next = 0;
  const lane = async () => {
    while (next < devices.length) {
      const i = next++;
      const a = await checkinUntilAssigned(population, devices[i]!, options, round);
      const values = clientDelta(k, (params.first ?? 0) + i, round);
      const r = await uploadUntilAccepted(a, vectorUpload(values), options);
      if (!r.accepted) {
        refused.push(r.final);
        continue;
      }
      total += sumOf(values);
      accepted += 1;
      await params.onAccepted?.(accepted);
    }
  };
  await Promise.all(Array.from({ length: Math.min(params.concurrency ?? 16, devices.length) }, lane));
  return { total, accepted, refused };
}
