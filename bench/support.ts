import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { freePort, type Cluster } from '../test/support/cluster';
import { vectorSumPlan } from '../test/support/plans';

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

/** Prints one figure line. */
export function figure(label: string, value: number, unit: string): void {
  console.log(`${label.padEnd(44)} ${value.toFixed(1).padStart(10)} ${unit}`);
}

/** Submits a one-round vector-sum plan of `floats` floats for `clients` clients; its id and population. */
export async function submitVectorPlan(
  cluster: Cluster,
  floats: number,
  clients: number,
): Promise<{ id: string; population: string }> {
  const plan = vectorSumPlan(floats, {
    rounds: 1,
    target_clients: clients,
    selection_timeout_s: 3600,
    reporting_deadline_s: 3600,
  });
  const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
  if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  return { id, population: (plan.client_data as { collection: string }).collection };
}
