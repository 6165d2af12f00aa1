import { ResourceCache } from './resource-cache';
import type { Transport } from './transport';

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
      return read(new Response('{}', { headers: { etag: '"e"' } }));
    },
  } as unknown as Transport;
  const cache = new ResourceCache(transport);
  await cache.clientPlan('p1', 'http://x/plan', undefined, 1_000);
  await cache.broadcast('http://x/broadcast', undefined, 2_000);
  await cache.broadcast('http://x/other');
  expect(seen).toEqual([1_000, 2_000, undefined]);
});
