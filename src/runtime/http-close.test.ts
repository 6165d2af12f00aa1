import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { fastClose } from './http-close';

/** A server whose `/slow` answers after `slowMs`, everything else at once; `slowArrived` when one came. */
async function serve(slowMs: number) {
  let arrived!: () => void;
  const slowArrived = new Promise<void>((r) => (arrived = r));
  const server = http.createServer((req, res) => {
    const answer = (): void => void res.end('ok');
    if (req.url === '/slow') {
      arrived();
      setTimeout(answer, slowMs).unref();
    } else answer();
  });
  const close = fastClose(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, close, slowArrived, port: (server.address() as AddressInfo).port };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

test('closes at once connections with nothing in flight: one a client opened and sent nothing on, one kept alive', async () => {
  const { close, port } = await serve(0);
  const silent = await connect(port);
  const agent = new http.Agent({ keepAlive: true });
  await new Promise<void>((resolve, reject) =>
    http
      .get({ port, host: '127.0.0.1', path: '/', agent }, (res) => res.resume().on('end', resolve))
      .on('error', reject),
  );
  const silentClosed = new Promise<void>((r) => silent.once('close', () => r()));
  const t0 = Date.now();
  await close(30_000);
  await silentClosed;
  // Node alone keeps both until the client or a 5 s keep-alive timeout ends them; the bound leaves margin
  // for a loaded machine's late timers.
  expect(Date.now() - t0).toBeLessThan(4000);
  agent.destroy();
});

test('lets a request in flight finish, then closes its connection', async () => {
  const { close, port, slowArrived } = await serve(300);
  const body = new Promise<string>((resolve, reject) =>
    http
      .get({ port, host: '127.0.0.1', path: '/slow', agent: new http.Agent({ keepAlive: true }) }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(text));
      })
      .on('error', reject),
  );
  await slowArrived;
  const t0 = Date.now();
  await close(30_000);
  expect(await body).toBe('ok');
  // Closed after the 300 ms request, not at the keep-alive timeout (5 s); margin for late timers.
  expect(Date.now() - t0).toBeLessThan(4000);
});

test('cuts a request still in flight after the grace period', async () => {
  const { close, port, slowArrived } = await serve(60_000);
  const failed = new Promise<unknown>((resolve) =>
    http.get({ port, host: '127.0.0.1', path: '/slow' }, () => resolve('answered')).on('error', resolve),
  );
  await slowArrived;
  await close(200);
  expect(String(await failed)).toMatch(/socket hang up|ECONNRESET/);
});
