import { RoundhouseClient } from '../../src/client/client';
import { MemoryExampleStore } from '../../src/client/example-store';
import { decodeBundle } from '../../src/codec';
import { initBackend } from '../../src/compute/backend';
import { tensorsOf } from '../../src/compute/value';
import { digitsClientExamples, loadDigits, partitionNonIid, trainTestSplit } from '../../src/data/digits';
import { PLAN_LIBRARY } from '../../src/plans';
import { LocalRunner } from '../../src/runner/local-runner';
import type { RoundInfo } from '../../src/store/types';
import { eventually, roundSelecting, startCluster, type Cluster } from '../support/cluster';
import { describeOn, type RedisKind } from '../support/test-redis';

// Acceptance: a multi-round FedAvg on the digits data driven through HTTP, aggregated by two worker
// processes, ends with the same model as the local runner given the same clients and data.
const ROUNDS = 4;
const PER_ROUND = 8;

/** The suite, on the machine's Redis or on a Redis Cluster of its own (test/server-fedavg.test.ts, test/cluster/). */
export function serverFedAvgSuite(kind: RedisKind): void {
  describeOn(kind, 'FedAvg through the server with two worker processes', () => {
    let cluster: Cluster;
    beforeAll(async () => {
      await initBackend();
      cluster = await startCluster({ workers: 2 });
    });
    afterAll(() => cluster?.stop());

    test('ends with the local runner model (weights within 1e-5)', async () => {
      const { train } = trainTestSplit(loadDigits(), 0.2, 3);
      const parts = partitionNonIid(train.y, 24, 2, 3);
      const clients = new Map(parts.map((idx, i) => [`client-${i}`, digitsClientExamples(train, idx)]));
      const plan = PLAN_LIBRARY.fedavg!.build({
        rounds: ROUNDS,
        targetClients: PER_ROUND,
        epochs: 2,
        reportingDeadline: 120,
        selectionTimeout: 120,
      });
      const runner = new LocalRunner(plan, clients, { seed: 11 });

      const created = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };

      for (let round = 1; round <= ROUNDS; round++) {
        await roundSelecting(cluster, id, round);
        const chosen = runner.sampleClients(round);
        // The same clients take part on the server, concurrently, each through the full protocol.
        await Promise.all(
          chosen.map(async (cid) => {
            const client = new RoundhouseClient({
              server: cluster.url,
              population: plan.client_data.collection,
              clientId: cid,
              store: new MemoryExampleStore({ [plan.client_data.collection]: clients.get(cid)! }),
            });
            const answer = await client.checkin();
            if (!('assignment' in answer))
              throw new Error(`client ${cid} was not assigned in round ${round}`);
            expect(answer.assignment.round).toBe(round);
            expect((await client.runTask(answer.assignment)).kind).toBe('completed');
          }),
        );
        const info = await eventually(`round ${round} to complete`, async () => {
          const res = await cluster.operator(`/v1/plans/${id}/rounds`);
          const { rounds } = (await res.json()) as { rounds: RoundInfo[] };
          return rounds.find((r) => r.round === round && r.phase === 'completed');
        });
        expect(info.aggregated_clients).toBe(PER_ROUND);
        runner.runRound();
      }

      const stateRes = await cluster.operator(`/v1/plans/${id}/state`);
      expect(stateRes.status).toBe(200);
      const serverState = decodeBundle(new Uint8Array(await stateRes.arrayBuffer()), runner.checked.types.S);
      const server = tensorsOf(serverState).map((t) => t.dataSync());
      const local = tensorsOf(runner.state()).map((t) => t.dataSync());
      expect(server.length).toBe(local.length);
      let maxDiff = 0;
      server.forEach((s, i) => {
        expect(s.length).toBe(local[i]!.length);
        for (let j = 0; j < s.length; j++) maxDiff = Math.max(maxDiff, Math.abs(s[j]! - local[i]![j]!));
      });
      expect(maxDiff).toBeLessThanOrEqual(1e-5);
      // The model moved: it is not the initial state on both sides.
      const fresh = new LocalRunner(plan, clients);
      const moved = tensorsOf(fresh.state()).some((t, i) =>
        t.dataSync().some((v, j) => Math.abs(v - server[i]![j]!) > 1e-3),
      );
      expect(moved).toBe(true);
      fresh.dispose();
      tensorsOf(serverState).forEach((t) => t.dispose());
      runner.dispose();
      // Four rounds of local training by eight clients in this process, each round's wait bounded at 60 s.
    }, 480_000);
  });
}
