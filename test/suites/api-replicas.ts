import { startFaultCluster, type FaultCluster } from '../support/fault-harness';
import { vectorSumPlan, vectorUpload } from '../support/plans';
import { sumProgram } from '../support/stateful-programs';
import {
  checkinPersisting,
  onlyRetryable,
  tally,
  uploadPersisting,
  type Seen,
} from '../support/retrying-client';
import { describeOn, type RedisKind } from '../support/test-redis';

// Several API processes (issue 11, point 3): three API processes and three workers on one Redis with one
// TOKEN_SECRET; clients spread over the APIs round-robin (a task assigned by one API is uploaded through
// whichever the client reaches); one API SIGKILLed mid-round with requests in flight. The round completes
// with the exact sum, and no client sees more than retryable answers: its requests to the dead API fail
// to connect, and it goes on with the next API, as behind a load balancer.

const K = 8;
const CLIENTS = 18;
const population = `vectors${K}`;
const values = (c: number) => Float32Array.from({ length: K }, (_, j) => (c * 5 + j) % 9);
const total = (v: Float32Array) => v.reduce((a, b) => a + b, 0);

export function apiReplicasSuite(kind: RedisKind): void {
  describeOn(kind, 'three API processes and three workers, one API killed mid-round', () => {
    let cluster: FaultCluster;
    beforeAll(async () => {
      cluster = await startFaultCluster({ apis: 3, workers: 3, env: { WORKER_LOCK_MS: '2000' } });
    }, 180_000);
    afterAll(() => cluster?.stop());

    test('the round completes exactly; clients see only retryable answers', async () => {
      const id = await cluster.submit(
        vectorSumPlan(K, {
          rounds: 1,
          target_clients: CLIENTS,
          min_reports: CLIENTS,
          min_clients_in_aggregate: 1,
          selection_timeout_s: 300,
          reporting_deadline_s: 300,
        }),
      );
      const urls = cluster.apis.map((a) => a.url);
      const seen: Seen = [];
      let expected = 0;
      // Client c starts at API c mod 3 and moves to the next one on each retry.
      const client = async (c: number) => {
        const server = (turn: number) => urls[(c + turn) % urls.length]!;
        const a = await checkinPersisting(seen, server, population, `dev-${c}`);
        // The upload goes through the next API, not the one that assigned the task: any API takes any token.
        await uploadPersisting(seen, (turn) => server(turn + 1), a, vectorUpload(values(c)));
        expected += total(values(c));
      };

      const first = CLIENTS / 3;
      await Promise.all(Array.from({ length: first }, (_, c) => client(c)));
      // The rest start now, and API 1 dies while they are under way.
      const rest = Promise.all(Array.from({ length: CLIENTS - first }, (_, c) => client(first + c)));
      await new Promise((r) => setTimeout(r, 30));
      const victim = cluster.apis[0]!;
      await victim.kill('SIGKILL');
      await rest;

      const info = await cluster.waitCompleted(id, 1, 120_000);
      expect(info.output).toEqual({ total: expected, count: CLIENTS });
      expect(info.aggregated_clients).toBe(CLIENTS);
      expect(onlyRetryable(seen)).toEqual([]);
      expect(victim.alive).toBe(false);
      console.log(`api replicas (${kind} Redis): answers seen ${JSON.stringify(tally(seen))}`);
    }, 240_000);

    test('a plan or a program deleted through one API is served by no other, though it had it cached', async () => {
      const [one, other] = cluster.apis.filter((a) => a.alive).map((a) => a.url);
      const operator = (url: string, path: string, method: string) =>
        fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${cluster.operatorToken}` } });
      const codeOf = async (res: Response) => ({
        status: res.status,
        code: ((await res.json()) as { error?: { code?: string } }).error?.code,
      });

      const plan = await cluster.submit({
        ...vectorSumPlan(K, {
          rounds: 1,
          target_clients: 3,
          min_reports: 3,
          min_clients_in_aggregate: 1,
          selection_timeout_s: 300,
          reporting_deadline_s: 300,
        }),
        population: 'deleted-elsewhere',
      });
      expect((await fetch(`${other}/v1/plans/${plan}/client-plan`)).status).toBe(200);
      expect((await operator(one!, `/v1/plans/${plan}/cancel`, 'POST')).status).toBe(200);
      expect((await operator(one!, `/v1/plans/${plan}`, 'DELETE')).status).toBe(200);
      expect(await codeOf(await fetch(`${other}/v1/plans/${plan}/client-plan`))).toEqual({
        status: 404,
        code: 'PLAN_NOT_FOUND',
      });

      const program = { ...sumProgram(2, 3), population: 'deleted-elsewhere-program' };
      const submitted = await fetch(`${one}/v1/programs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${cluster.operatorToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(program),
      });
      expect(submitted.status).toBe(201);
      const { id } = (await submitted.json()) as { id: string };
      const checkin = await fetch(`${other}/v1/populations/${program.population}/checkin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ device_id: 'deleted-elsewhere-device' }),
      });
      const { session } = (await checkin.json()) as { session: { token: string } };
      const clientProgram = () =>
        fetch(`${other}/v1/programs/${id}/client-program`, {
          headers: { authorization: `Bearer ${session.token}` },
        });
      expect((await clientProgram()).status).toBe(200);
      expect((await operator(one!, `/v1/programs/${id}/cancel`, 'POST')).status).toBe(200);
      expect((await operator(one!, `/v1/programs/${id}`, 'DELETE')).status).toBe(200);
      expect(await codeOf(await clientProgram())).toEqual({ status: 404, code: 'PROGRAM_NOT_FOUND' });
    }, 120_000);
  });
}
