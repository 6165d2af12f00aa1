/**
 * `roundhouse programs submit` and `programs status` (run in-process) against a real server (API and worker
 * processes, real Redis, real HTTP): a program submitted from a file, read back recruiting, run to the end by
 * SDK devices and read back with its outputs; a program the server refuses fails with its code and pointer.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RoundhouseClient } from '../src/client';
import { MemoryExampleStore } from '../src/client/example-store';
import type { RunOutcome } from '../src/client/types';
import { initBackend } from '../src/compute/backend';
import { program as cli } from '../src/cli/main';
import { runInProcess } from '../src/cli/run-in-process.jest';
import type { ClientExamples } from '../src/data';
import type { Program } from '../src/stateful/program';
import { eventually, startCluster, type Cluster } from './support/cluster';
import { readings, sumProgram } from './support/stateful-programs';

let cluster: Cluster;
let dir: string;

beforeAll(async () => {
  await initBackend();
  cluster = await startCluster({ workers: 1 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-programs-cli-'));
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** `roundhouse <args> --server <cluster> --token <operator>`, in-process. */
const run = (...args: string[]) =>
  runInProcess(cli, [...args, '--server', cluster.url, '--token', cluster.operatorToken]);

function write(name: string, doc: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(doc));
  return file;
}

let populations = 0;
/** The sum program on a population of its own, so that the tests' cohorts never mix. */
function sum(min: number, target: number): Program {
  return { ...sumProgram(min, target), population: `cli-sensors-${process.pid}-${++populations}` };
}

function device(population: string, id: string, data: Record<string, ClientExamples>): RoundhouseClient {
  return new RoundhouseClient({
    server: cluster.url,
    population,
    deviceId: id,
    store: new MemoryExampleStore(data),
  });
}

describe('roundhouse programs submit|status against a server', () => {
  it('submit prints the id; status lists the program, then shows it recruiting and, once run, its outputs', async () => {
    const p = sum(2, 2);
    const submitted = await run('programs', 'submit', write('sum.json', p));
    expect(submitted.code).toBe(0);
    const id = submitted.out.trim();
    expect(id).toMatch(/^\S+$/);

    const listed = await run('programs', 'status');
    expect(listed.code).toBe(0);
    const [header, ...rows] = listed.out.trim().split('\n');
    expect(header).toMatch(/^ID +NAME +POPULATION +STATUS +STEP +COHORT +LIVE +CREATED$/);
    const row = rows.find((r) => r.startsWith(id));
    expect(row).toMatch(
      new RegExp(`^${id} +sum-then-scale +${p.population} +recruiting +0/${p.steps.length} +0/2 +0 +`),
    );

    const recruiting = await run('programs', 'status', id);
    expect(recruiting.out).toContain(
      `program ${id}  sum-then-scale  population=${p.population}  status=recruiting`,
    );
    expect(recruiting.out).toContain(
      'cohort: 0 joined (target 2, min 2); sessions: 0 live, 0 failed, 0 left',
    );

    const outcomes = (await Promise.all([
      device(p.population, 'cli-a', readings(1, 2)).runOnce(),
      device(p.population, 'cli-b', readings(4)).runOnce(),
    ])) as Extract<RunOutcome, { kind: 'session' }>[];
    for (const o of outcomes) expect(o.session.status).toBe('completed');
    const done = await eventually('the program to complete', async () => {
      const r = await run('programs', 'status', id, '--json');
      const body = JSON.parse(r.out) as { status: string; outputs?: unknown };
      return body.status === 'completed' ? body : undefined;
    });
    // total 7, doubled 14, scaled_total (3 + 4) * 14: computed by the server from the devices' readings.
    expect(done.outputs).toEqual({ total: 7, doubled: 14, scaled_total: 98 });
    const shown = await run('programs', 'status', id);
    expect(shown.out).toContain(`status=completed  step=${p.steps.length}/${p.steps.length}`);
    expect(shown.out).toMatch(/\noutputs:\n {2}total: 7\n {2}doubled: 14\n {2}scaled_total: 98\n$/);
  }, 60_000);

  it('submit --json prints the summary; status --json of the list has it', async () => {
    const p = sum(2, 3);
    const submitted = await run('programs', 'submit', write('sum3.json', p), '--json');
    expect(submitted.code).toBe(0);
    const summary = JSON.parse(submitted.out) as { id: string; status: string; target_clients: number };
    expect(summary).toMatchObject({ status: 'recruiting', target_clients: 3, min_clients: 2 });
    const list = JSON.parse((await run('programs', 'status', '--json')).out) as {
      programs: { id: string; population: string }[];
    };
    expect(list.programs.find((x) => x.id === summary.id)).toMatchObject({ population: p.population });
  });

  it('a program the server refuses fails with the code and the pointer, and is not stored', async () => {
    const p = sum(2, 2) as unknown as { steps: { args?: string[] }[]; population: string };
    // A server step reading a client value directly: the privacy rule.
    p.steps[3]!.args = ['s'];
    await expect(run('programs', 'submit', write('leak.json', p))).rejects.toThrow(
      /POST \/v1\/programs failed: 400 PROGRAM_PRIVACY_VIOLATION: [^]*\n {2}\/steps\/3\/args\/0: /,
    );
    const list = JSON.parse((await run('programs', 'status', '--json')).out) as {
      programs: { population: string }[];
    };
    expect(list.programs.filter((x) => x.population === p.population)).toEqual([]);
  });

  it('status of a program that does not exist fails with 404 PROGRAM_NOT_FOUND; a wrong token with a hint', async () => {
    await expect(run('programs', 'status', 'nosuch')).rejects.toThrow(
      /GET \/v1\/programs\/nosuch failed: 404 PROGRAM_NOT_FOUND/,
    );
    await expect(
      runInProcess(cli, ['programs', 'status', '--server', cluster.url, '--token', 'wrong']),
    ).rejects.toThrow(/401 UNAUTHORIZED.*check --token or OPERATOR_TOKEN/);
  });
});
