import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { PLAN_LIBRARY } from '../src/plans';
import type { RoundSummary } from '../src/simulate/simulator';
import { runCli as run, startCluster, type Cluster } from './support/cluster';

// `roundhouse simulate` with a secure library plan: it submits fedavg --secure, its SDK clients run SecAgg+,
// some of them leave after their masked upload (--unmask-dropout), and the round's summary shows the
// SecAgg counts: everyone in the cohort shared and uploaded, and only those who stayed unmasked.

const CLIENTS = 10;
const SEED = 1;
const UNMASK_DROPOUT = 0.3;

let cluster: Cluster;
let dir: string;

beforeAll(async () => {
  cluster = await startCluster({ workers: 1 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-simulate-secagg-'));
});
afterAll(async () => {
  await cluster?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The simulated clients that leave before unmasking: the simulator draws each client's behaviour from
 * seedrandom(`<seed>:behaviour:<i>`), once before the upload (no dropout or stragglers here) and once
 * before unmasking.
 */
function leavers(): number[] {
  return Array.from({ length: CLIENTS }, (_, i) => i).filter((i) => {
    const behaviour = seedrandom(`${SEED}:behaviour:${i}`);
    behaviour();
    return behaviour() < UNMASK_DROPOUT;
  });
}

test('simulate --submit runs a fedavg --secure plan through SecAgg+ and reports its counts, with clients leaving before unmasking', async () => {
  const leaving = leavers().length;
  // Enough leave to show, few enough that the others' shares unmask them.
  expect(leaving).toBeGreaterThanOrEqual(1);
  expect(leaving).toBeLessThanOrEqual(3);

  const built = PLAN_LIBRARY.fedavg!.build({
    rounds: 1,
    targetClients: CLIENTS,
    overSelection: 1,
    minReports: CLIENTS - leaving,
    epochs: 1,
    secure: true,
    selectionTimeout: 30,
    reportingDeadline: 200,
  });
  // Those who leave never answer: the round waits out the unmasking timeout, so that is short here.
  const plan = {
    ...built,
    schedule: {
      ...built.schedule,
      secure_aggregation: { protocol: 'secagg+', unmasking_timeout_s: 3 },
    },
  };
  const file = path.join(dir, 'fedavg-secure.json');
  fs.writeFileSync(file, JSON.stringify(plan));

  const { code, stdout, stderr } = await run([
    'simulate',
    '--server',
    cluster.url,
    '--token',
    cluster.operatorToken,
    '--submit',
    file,
    '--clients',
    String(CLIENTS),
    '--seed',
    String(SEED),
    '--unmask-dropout',
    String(UNMASK_DROPOUT),
    '--rounds',
    '1',
    '--json',
  ]);
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  const summaries = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as RoundSummary);
  expect(summaries).toHaveLength(1);
  const [round] = summaries as [RoundSummary];
  expect(round).toMatchObject({
    round: 1,
    status: 'completed',
    participants: CLIENTS,
    dropped: leaving,
    secureAggregation: {
      protocol: 'secagg+',
      advertised: CLIENTS,
      shared: CLIENTS,
      unmasked: CLIENTS - leaving,
    },
  });
  // Every client is in the sum: the secure plan's output counts them, and the model learned from them.
  expect(round.output).toMatchObject({ clients: CLIENTS });
  expect(round.accuracy).toBeGreaterThan(0);
}, 180_000);
