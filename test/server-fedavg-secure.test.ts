import { RoundhouseClient } from '../src/client/client';
import { MemoryExampleStore } from '../src/client/example-store';
import { decodeBundle, readTypedBundle } from '../src/codec';
import { initBackend } from '../src/compute/backend';
import { tensorLeaves } from '../src/compute/types';
import { disposeValue } from '../src/compute/value';
import { digitsClientExamples, loadDigits, partitionNonIid, trainTestSplit } from '../src/data/digits';
import { PLAN_LIBRARY } from '../src/plans';
import { LocalRunner } from '../src/runner/local-runner';
import { maskedUploadType } from '../src/secagg/upload-type';
import type { RoundInfo } from '../src/store/types';
import { eventually, roundSelecting, startCluster, type Cluster } from './support/cluster';

// Acceptance of secure FedAvg: the library's `fedavg --secure` plan (each client's model change in 16-bit
// fixed point through secure_sum_bitwidth, masked with SecAgg+, the plan's default) on the digits split of
// test/fedavg-digits.test.ts, through the built server, its HTTP API and two worker processes, with the
// clients run-local would sample (seed 0), reaches 0.90 held-out accuracy.
//
// The runtime lever is the round count: a server round of this exchange takes 4 to 10 s on a loaded 2-core
// machine (each phase waits out the clients' polls, about 1 s apiece, besides their training), so 50 rounds
// would take 3 to 8 minutes. The local run of the same plan and clients (src/plans/fedavg-secure.test.ts),
// whose accuracy curve the server's follows, holds 0.91 or more from round 23 on: this test stops at 25. Over-selection 1 makes the 20 clients the whole
// selection target, so that selection ends once they have advertised their keys, not at the timeout.
const ROUNDS = 25;
const PER_ROUND = 20;

let cluster: Cluster;
beforeAll(async () => {
  await initBackend();
  cluster = await startCluster({ workers: 2 });
});
afterAll(() => cluster?.stop());

/**
 * A fetch that keeps the body of every upload (POST to a task's result URL) it passes to the real one, by
 * URL: a try that timed out on a loaded machine is sent again, the same bytes to the same task.
 */
function keepingUploads(into: Map<string, Uint8Array>): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    if (init?.method === 'POST' && String(input).endsWith('/result')) {
      into.set(String(input), new Uint8Array(init.body as Uint8Array));
    }
    return fetch(input, init);
  }) as typeof fetch;
}

/** The held-out accuracy of the server's current model, scored by the runner's `evaluate`. */
async function serverAccuracy(id: string, round: number, runner: LocalRunner): Promise<number> {
  const res = await cluster.operator(`/v1/plans/${id}/state`);
  expect(res.status).toBe(200);
  const state = decodeBundle(new Uint8Array(await res.arrayBuffer()), runner.checked.types.S);
  try {
    return (runner.evaluate(round, state) as { accuracy: number }).accuracy;
  } finally {
    disposeValue(state);
  }
}

test(`fedavg --secure over SecAgg+ reaches 0.90 held-out accuracy in ${ROUNDS} rounds of ${PER_ROUND} clients`, async () => {
  const { train, test: heldOutSplit } = trainTestSplit(loadDigits(), 0.2, 1);
  const parts = partitionNonIid(train.y, 100, 2, 1);
  const clients = new Map(
    parts.map((idx, i) => [`client-${String(i).padStart(3, '0')}`, digitsClientExamples(train, idx)]),
  );
  const heldOut = digitsClientExamples(
    heldOutSplit,
    Array.from({ length: heldOutSplit.n }, (_, i) => i),
  );
  const plan = PLAN_LIBRARY.fedavg!.build({
    secure: true,
    rounds: ROUNDS,
    targetClients: PER_ROUND,
    overSelection: 1,
  });
  expect(plan.schedule.secure_aggregation).toMatchObject({ protocol: 'secagg+' });
  // Sampling and scoring only: the runner runs no round here.
  const runner = new LocalRunner(plan, clients, { seed: 0, evaluationData: heldOut });
  // U carries nothing: every number a client sends goes through the secure sums.
  expect(tensorLeaves(runner.checked.types.U)).toEqual([]);
  const uploadType = maskedUploadType(runner.checked.signatures.work!.result);
  const maskedLeaves = runner.checked.types.V.reduce((n, v) => n + tensorLeaves(v).length, 0);

  const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };

  const accuracy = new Map<number, number>();
  for (let round = 1; round <= ROUNDS; round++) {
    await roundSelecting(cluster, id, round);
    const uploads = new Map<string, Uint8Array>();
    const outcomes = await Promise.all(
      runner.sampleClients(round).map(async (cid) => {
        const client = new RoundhouseClient({
          server: cluster.url,
          population: plan.client_data.collection,
          clientId: cid,
          store: new MemoryExampleStore({ [plan.client_data.collection]: clients.get(cid)! }),
          fetch: keepingUploads(uploads),
          gzip: false,
        });
        const answer = await client.checkin();
        if (!('assignment' in answer)) throw new Error(`client ${cid} was not assigned in round ${round}`);
        expect(answer.assignment.round).toBe(round);
        expect(answer.assignment.secure_aggregation).toBeDefined();
        return (await client.runTask(answer.assignment)).kind;
      }),
    );
    expect(outcomes).toEqual(Array(PER_ROUND).fill('completed'));
    const info = await eventually(
      `round ${round} to complete`,
      async () => {
        const res = await cluster.operator(`/v1/plans/${id}/rounds`);
        const { rounds } = (await res.json()) as { rounds: RoundInfo[] };
        const r = rounds.find((x) => x.round === round && x.attempt === 1);
        if (r?.phase === 'failed') throw new Error(`round ${round} failed: ${r.error}`);
        return r?.phase === 'completed' ? r : undefined;
      },
      120_000,
    );
    // The round ran the exchange: all 20 advertised keys, shared them, and sent their unmasking shares.
    expect(info.secure_aggregation).toEqual({
      protocol: 'secagg+',
      advertised: PER_ROUND,
      shared: PER_ROUND,
      unmasked: PER_ROUND,
    });
    expect(info.aggregated_clients).toBe(PER_ROUND);
    // What went over the wire is the masked lanes of V1..V3 and nothing else (readTypedBundle checks names,
    // dtypes and shapes against the masked upload type).
    expect(uploads.size).toBe(PER_ROUND);
    for (const body of uploads.values()) {
      const { tensors } = readTypedBundle(body, uploadType);
      expect(tensors).toHaveLength(maskedLeaves);
      expect(tensors.every((t) => t.dtype === 'int32' && t.shape[0] === 2)).toBe(true);
    }

    if (round === 1 || round === ROUNDS) accuracy.set(round, await serverAccuracy(id, round, runner));
  }
  runner.dispose();

  // Before training the model is near chance, so the figure is earned by the rounds; and it holds at the end.
  expect(accuracy.get(1)).toBeLessThan(0.9);
  expect(accuracy.get(ROUNDS)).toBeGreaterThanOrEqual(0.9);
}, 900_000);
