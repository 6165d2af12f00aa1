import express from 'express';
import type { AddressInfo } from 'node:net';
import { errorHandler, isRedisUnavailable, toAppError } from './errors';

describe('Redis being unreachable is 503 NOT_READY, never 500', () => {
  test.each([
    ['a command without a reply in time', new Error('Command timed out')],
    [
      'retries used up',
      Object.assign(new Error('Reached the max retries'), { name: 'MaxRetriesPerRequestError' }),
    ],
    ['a closed connection', new Error('Connection is closed.')],
    ['a refused connection', new Error('connect ECONNREFUSED 127.0.0.1:6379')],
    [
      "a Lua script's failure that wraps one",
      new Error('Lua script accept-upload failed: Command timed out', {
        cause: new Error('Command timed out'),
      }),
    ],
    [
      'a wrapper whose cause is one',
      new Error('could not read the plan', { cause: new Error('Command timed out') }),
    ],
  ])('%s', (_what, err) => {
    expect(isRedisUnavailable(err)).toBe(true);
    expect([toAppError(err).status, toAppError(err).code]).toEqual([503, 'NOT_READY']);
  });

  test('other failures stay 500 INTERNAL', () => {
    expect(toAppError(new Error('boom')).code).toBe('INTERNAL');
    expect(isRedisUnavailable('Command timed out')).toBe(false);
  });

  test('the answer carries Retry-After; a stream of them is logged once', async () => {
    const lines: unknown[] = [];
    const log = { error: (...a: unknown[]) => void lines.push(a), warn: () => undefined };
    const app = express();
    app.get('/x', () => {
      throw new Error('Command timed out');
    });
    app.use(errorHandler({ log: log as never }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
      for (let i = 0; i < 5; i++) {
        const res = await fetch(url);
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('2');
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_READY');
      }
      expect(lines.length).toBe(1);
    } finally {
      server.close();
    }
  });
});
