import { scaledClock, type Clock } from './clock';
import { errorFromResponse, parseRetryAfter } from './errors';
import { backoffMs, DeadlineExceeded, Transport } from './transport';

describe('backoff', () => {
  test('doubles from baseMs up to maxMs, half of each step fixed and half jitter', () => {
    const opts = { baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, opts, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3].map((n) => backoffMs(n, opts, () => 0.999999))).toEqual([
      expect.closeTo(100, 3),
      expect.closeTo(200, 3),
      expect.closeTo(400, 3),
    ]);
  });

  test('Retry-After is read as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('Transport', () => {
  const clock = (): Clock & { sleeps: number[]; t: number } => {
    const c = {
      t: 1_000_000,
      sleeps: [] as number[],
      now: () => c.t,
      sleep: async (ms: number) => void (c.sleeps.push(ms), (c.t += ms)),
    };
    return c;
  };
  const failing = (status: number, code: string) =>
    (async () =>
      new Response(
        JSON.stringify({ error: { code, message: code, details: [{ path: '/x', message: 'y' }] } }),
        {
          status,
        },
      )) as typeof fetch;

  test('a 4xx is thrown at once, typed, without a retry', async () => {
    const c = clock();
    const t = new Transport(failing(403, 'TOKEN_REUSED'), c, () => 0.5);
    await expect(t.send('http://x/', {})).rejects.toMatchObject({
      status: 403,
      code: 'TOKEN_REUSED',
      transient: false,
      details: [{ path: '/x', message: 'y' }],
    });
    expect(c.sleeps).toEqual([]);
  });

  test('a 5xx is retried `attempts` times in all, then thrown', async () => {
    const c = clock();
    const t = new Transport(failing(500, 'INTERNAL'), c, () => 0, { attempts: 3, baseMs: 100 });
    await expect(t.send('http://x/', {})).rejects.toMatchObject({ status: 500, transient: true });
    expect(c.sleeps).toEqual([50, 100]);
  });

  test('no retry starts that would end after `until`', async () => {
    const c = clock();
    const t = new Transport(failing(503, 'BUSY'), c, () => 0, { attempts: 5, baseMs: 1000 });
    await expect(t.send('http://x/', {}, { until: c.t + 1200 })).rejects.toBeInstanceOf(DeadlineExceeded);
    expect(c.sleeps).toEqual([500]);
  });

  /** A fetch that never answers (only its signal ends it), counting its calls. */
  const silent = () => {
    const f = Object.assign(
      (async (_url: unknown, init?: RequestInit) => {
        f.calls++;
        return new Promise<Response>((_, reject) =>
          init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)),
        );
      }) as unknown as typeof fetch,
      { calls: 0 },
    );
    return f;
  };

  test('a try the server never answers times out and is retried like a network error', async () => {
    const c = clock();
    const f = silent();
    const t = new Transport(f, c, () => 0, { attempts: 3, baseMs: 10 }, { connectMs: 50, totalMs: 60_000 });
    const t0 = Date.now();
    await expect(t.send('http://x/', { method: 'POST' })).rejects.toMatchObject({
      name: 'RoundhouseError',
      status: 0,
      code: 'TIMEOUT',
      transient: true,
      message: 'POST http://x/: no answer within 50 ms',
    });
    expect(f.calls).toBe(3);
    expect(c.sleeps).toEqual([5, 10]);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test("an upload's try has no connect timeout, and ends at its deadline", async () => {
    const c = clock();
    const slowAnswer = (async () => {
      await new Promise((r) => setTimeout(r, 150));
      return new Response('{}', { status: 202 });
    }) as typeof fetch;
    const timeouts = { connectMs: 50, totalMs: 60_000 };
    const t = new Transport(slowAnswer, c, () => 0, { attempts: 1 }, timeouts);
    expect((await t.send('http://x/', {}, { bulkBody: true })).status).toBe(202);
    await expect(t.send('http://x/', {})).rejects.toMatchObject({ code: 'TIMEOUT' });

    // 60 s in all, but the task's deadline is 100 ms away: the try ends then, and no retry can start.
    const f = silent();
    const bounded = new Transport(f, c, () => 0, { attempts: 5, baseMs: 1000 }, timeouts);
    const t0 = Date.now();
    await expect(
      bounded.send('http://x/', {}, { bulkBody: true, until: c.now() + 100 }),
    ).rejects.toBeInstanceOf(DeadlineExceeded);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(f.calls).toBe(1);
  });

  test("the caller's abort is not a timeout and is not retried", async () => {
    const c = clock();
    const f = silent();
    const t = new Transport(f, c, () => 0, { attempts: 3 }, { connectMs: 60_000 });
    const stop = new AbortController();
    const sent = t.send('http://x/', {}, { signal: stop.signal });
    stop.abort(new Error('stopped'));
    await expect(sent).rejects.toThrow('stopped');
    expect(f.calls).toBe(1);
  });

  test('a body that is not the error shape becomes UNKNOWN with the status', async () => {
    const e = await errorFromResponse(
      new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
    );
    expect([e.status, e.code, e.transient, e.message]).toEqual([
      502,
      'UNKNOWN',
      true,
      'HTTP 502 Bad Gateway',
    ]);
  });

  test('a scaled clock shortens sleeps but keeps real time', async () => {
    const base = clock();
    const scaled = scaledClock(0.1, base);
    await scaled.sleep(5000);
    expect(base.sleeps).toEqual([500]);
    expect(scaled.now()).toBe(base.now());
  });
});
