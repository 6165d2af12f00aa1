/**
 * A client that does what real clients do when a server is failing over or one of several API processes
 * dies: it retries retryable answers (503, a refused or reset connection, a retry window) and moves to the
 * next server it knows, as a load balancer would send it elsewhere. Every answer it saw is recorded, so
 * that a test can require that nothing worse than a retryable one came back.
 */
import type { RawAssignment } from './raw-client';

/** What each request of a client got: an HTTP status with its error code, or `connection`. */
export type Seen = string[];

/**
 * Calls `attempt` until it gives a value; a thrown error (a refused or reset connection) and an answer
 * marked `retry` wait and try again, with `turn` counting the tries (to pick the next server). An answer
 * neither successful nor retryable fails at once. Gives up after `ms`.
 */
export async function persist<T>(
  seen: Seen,
  what: string,
  attempt: (turn: number) => Promise<{ status: number | string; value: T | undefined; retry: boolean }>,
  ms = 90_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (let turn = 0; ; turn++) {
    let answer: { status: number | string; value: T | undefined; retry: boolean } | undefined;
    try {
      answer = await attempt(turn);
    } catch {
      seen.push('connection');
    }
    if (answer) {
      seen.push(String(answer.status));
      if (answer.value !== undefined && !answer.retry) return answer.value;
      if (!answer.retry) throw new Error(`${what}: answered ${answer.status}`);
    }
    if (Date.now() > end) throw new Error(`${what}: no success in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Checks in as `device` at `server(turn)` until assigned. */
export function checkinPersisting(
  seen: Seen,
  server: (turn: number) => string,
  population: string,
  device: string,
): Promise<RawAssignment> {
  return persist(seen, `check-in of ${device}`, async (turn) => {
    const res = await fetch(`${server(turn)}/v1/populations/${population}/checkin`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ device_id: device }),
    });
    const body = (await res.json()) as { assignment?: RawAssignment };
    // A retry window (no task yet) is an answer to come back, like a 503.
    return {
      status: res.status,
      value: body.assignment && { ...body.assignment, device },
      retry: res.status === 503 || (res.ok && !body.assignment),
    };
  });
}

/**
 * Uploads under an assignment at `server(turn)` (the upload URL's path on that server) until accepted:
 * 202, or 409 UPLOAD_DUPLICATE after an earlier try whose answer was lost (it was accepted).
 */
export function uploadPersisting(
  seen: Seen,
  server: (turn: number) => string,
  a: RawAssignment,
  bytes: Uint8Array,
): Promise<true> {
  const path = new URL(a.upload_url).pathname;
  return persist(seen, `upload of ${a.device ?? a.task_id}`, async (turn) => {
    const res = await fetch(`${server(turn)}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${a.token}`,
        'content-type': 'application/octet-stream',
        ...(a.device !== undefined ? { 'x-device-credential': a.device } : {}),
      },
      body: bytes as BodyInit,
    });
    const code = res.ok ? undefined : ((await res.json()) as { error?: { code?: string } }).error?.code;
    const done = res.status === 202 || code === 'UPLOAD_DUPLICATE';
    return {
      status: code ? `${res.status} ${code}` : res.status,
      value: done || undefined,
      retry: res.status === 503,
    };
  });
}

/** Whether every answer seen was a success or a retryable one. */
export function onlyRetryable(seen: Seen): string[] {
  return seen.filter((s) => !/^(200|202|409 UPLOAD_DUPLICATE|503( \w+)?|connection)$/.test(s));
}

/** How many times each answer was seen. */
export function tally(seen: Seen): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of seen) out[x] = (out[x] ?? 0) + 1;
  return out;
}
