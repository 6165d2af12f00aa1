import { ResourceCache } from './resource-cache';
import type { Transport } from './transport';
import { CLIENT_PLAN_FORMAT } from './types';
import { isRoundhouseError } from './errors';

test('downloads for a task carry its deadline, so that their tries end with it', async () => {
  const seen: unknown[] = [];
  const transport = {
    request: async (
      _url: string,
      _init: unknown,
      options: { until?: number },
      read: (r: Response) => unknown,
    ) => {
      seen.push(options.until);
      return read(new Response(JSON.stringify({ format: CLIENT_PLAN_FORMAT }), { headers: { etag: '"e"' } }));
    },
  } as unknown as Transport;
  const cache = new ResourceCache(transport);
  await cache.clientPlan('p1', 'http://x/plan', undefined, 1_000);
  await cache.broadcast('http://x/broadcast', undefined, 2_000);
  await cache.broadcast('http://x/other');
  expect(seen).toEqual([1_000, 2_000, undefined]);
});

test('a client plan of a format this client does not read is refused, and asked for again next time', async () => {
  let format = 'roundhouse.client-plan/v2';
  const transport = {
    request: async (_url: string, _init: unknown, _options: unknown, read: (r: Response) => unknown) =>
      read(new Response(JSON.stringify({ format }))),
  } as unknown as Transport;
  const cache = new ResourceCache(transport);
  const refused = await cache.clientPlan('p1', 'http://x/plan').catch((e: unknown) => e);
  expect(isRoundhouseError(refused, 'CLIENT_PLAN_UNSUPPORTED')).toBe(true);
  expect((refused as Error).message).toBe(
    'client plan format "roundhouse.client-plan/v2" is not roundhouse.client-plan/v1, the one this client reads',
  );
  expect((refused as { transient: boolean }).transient).toBe(false);
  format = CLIENT_PLAN_FORMAT;
  await expect(cache.clientPlan('p1', 'http://x/plan')).resolves.toEqual({ format });
});
