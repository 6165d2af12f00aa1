/** Whether a Redis answers at an address, and the free ports a private one can take. */
import * as net from 'node:net';
import { newClient } from './redis-connection';

/** True when the connection was refused: nothing listens at the address. */
export function refused(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';
}

/** Resolves when `url` answers PING within `timeoutMs`; rejects with the reason otherwise. */
export async function ping(url: string, timeoutMs: number): Promise<void> {
  const client = newClient(
    url,
    {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
      // The probe has nothing to flush; a longer timeout would hold the process for it after a refused connect.
      disconnectTimeout: 0,
    },
    { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy: () => null },
  );
  let lastError: unknown;
  client.on('error', (e) => (lastError = e));
  let timer: NodeJS.Timeout | undefined;
  const answered = (async () => {
    await client.connect();
    await client.ping();
  })();
  // The loser of the race below must not become an unhandled rejection.
  answered.catch(() => undefined);
  try {
    await Promise.race([
      // "Connection is closed." says less than the socket error behind it (ECONNREFUSED, ENOTFOUND).
      answered.catch((e: unknown) => {
        throw lastError ?? e;
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(lastError ?? new Error(`no answer within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A pause that does not keep the process alive (it bounds waits that usually end sooner). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
