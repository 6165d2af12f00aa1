/**
 * The client protocol at the level of raw HTTP requests, for tests and benchmarks that craft their own
 * upload bytes (the SDK would compute them with `work`).
 */

/** The parts of an assignment these callers use. */
export interface RawAssignment {
  readonly upload_url: string;
  readonly token: string;
  readonly round: number;
  readonly attempt: number;
  readonly task_id: string;
  /** The device id that checked in (not part of the server's answer): the upload presents it again. */
  readonly device?: string;
}

/**
 * Checks in as device `deviceId` (anonymous mode); the assignment with its `device`, or undefined when the
 * server answered a retry window (a device holds one task per round attempt).
 */
export async function checkinRaw(
  server: string,
  population: string,
  deviceId: string,
): Promise<RawAssignment | undefined> {
  const res = await fetch(`${server}/v1/populations/${population}/checkin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ device_id: deviceId }),
  });
  if (!res.ok) throw new Error(`check-in answered ${res.status}: ${await res.text()}`);
  const assignment = ((await res.json()) as { assignment?: RawAssignment }).assignment;
  return assignment && { ...assignment, device: deviceId };
}

/**
 * Checks in until assigned (at most `ms`): the next round opens just after the last one completes, so a
 * check-in right after a completion may come before it and get a retry window.
 */
export async function assignedRaw(
  server: string,
  population: string,
  deviceId: string,
  ms = 30_000,
): Promise<RawAssignment> {
  const end = Date.now() + ms;
  for (;;) {
    const a = await checkinRaw(server, population, deviceId);
    if (a) return a;
    if (Date.now() > end) throw new Error(`device ${deviceId} got no task of ${population} in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Uploads bytes under an assignment's token; with `retryBusy`, waits and tries again while the server
 * answers 503 BUSY, as a real client would. Returns the final status and error code, and the 503s seen.
 */
export async function uploadRaw(
  a: Pick<RawAssignment, 'upload_url' | 'token' | 'device'>,
  body: Uint8Array,
  options: { retryBusy?: boolean; headers?: Record<string, string> } = {},
): Promise<{ status: number; code?: string; busy: number }> {
  let busy = 0;
  for (;;) {
    let res: Response;
    try {
      res = await fetch(a.upload_url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${a.token}`,
          'content-type': 'application/octet-stream',
          ...(a.device !== undefined ? { 'x-device-credential': a.device } : {}),
          ...options.headers,
        },
        body: body as BodyInit,
      });
    } catch (e) {
      // A server that refuses an upload before reading its body (503 BUSY, docs/server.md "Back-pressure")
      // closes the connection while a large body is still being sent; the client may then see the reset
      // instead of the answer. Real clients retry a reset as they retry a 503.
      if (!options.retryBusy || !connectionReset(e)) throw e;
      busy += 1;
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const json = (await res.json().catch(() => ({}))) as { error?: { code: string } };
    if (res.status === 503 && options.retryBusy) {
      busy += 1;
      await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? '1') * 50));
      continue;
    }
    return { status: res.status, code: json.error?.code, busy };
  }
}

/** Whether a fetch failed because the server closed the connection mid-request. */
function connectionReset(e: unknown): boolean {
  const code = (e as { cause?: { code?: string } }).cause?.code;
  return code === 'EPIPE' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET';
}
