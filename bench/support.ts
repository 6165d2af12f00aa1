import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import autocannon from 'autocannon';
import { freePort } from '../test/support/cluster';

export { startCluster, eventually, type Cluster } from '../test/support/cluster';

/** Starts the bare express baseline server in its own process, like the server under test. */
export async function startBare(): Promise<{ url: string; stop(): void; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(__dirname, 'bare-server.js'), String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`bare server exited with ${c}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child, stop: () => child.kill('SIGTERM') };
}

/** Runs autocannon and returns requests per second (mean) and the count of non-2xx answers. */
export async function load(opts: {
  url: string;
  body: string | Buffer;
  headers: Record<string, string>;
  connections: number;
  seconds: number;
}): Promise<{ rps: number; non2xx: number; p99: number }> {
  const r = await autocannon({
    url: opts.url,
    method: 'POST',
    body: opts.body,
    headers: opts.headers,
    connections: opts.connections,
    duration: opts.seconds,
  });
  return { rps: r.requests.average, non2xx: r.non2xx, p99: r.latency.p99 };
}

/** Prints one figure line. */
export function figure(label: string, value: number, unit: string): void {
  console.log(`${label.padEnd(44)} ${value.toFixed(1).padStart(10)} ${unit}`);
}
