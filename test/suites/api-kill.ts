/**
 * API processes SIGKILLed in the middle of uploads: one at the point where the upload is stored and its 202
 * not yet sent (upload-after-accept), one where it is checked and not yet stored (upload-before-accept),
 * one with upload bodies half sent. Every client retries with its token against another API process
 * (same TOKEN_SECRET, same Redis); each upload must count exactly once.
 */
import * as http from 'node:http';
import { vectorUpload, vectorSumPlan } from '../support/plans';
import {
  checkinUntilAssigned,
  clientDelta,
  sumOf,
  uploadUntilAccepted,
  type ClientOptions,
} from '../support/fault-clients';
import {
  startFaultCluster,
  type ApiProcess,
  type FaultCluster,
  type RoundhouseProcess,
} from '../support/fault-harness';
import type { RawAssignment } from '../support/raw-client';
import { describeOn, type RedisKind } from '../support/test-redis';

export function apiKillSuite(kind: RedisKind): void {
  describeOn(kind, 'an API process killed mid-upload', () => {
    const K = 16;
    const population = `vectors${K}`;
    /** Two uploads die with an armed API process, three with a killed one, four go straight through. */
    const CLIENTS = 9;

    let cluster: FaultCluster | undefined;
    afterAll(() => cluster?.stop());

    /**
     * Sends the headers and half the body of an upload, then waits; resolves `sent` once the half is written,
     * and `ended` with how the request ended (an error is what a client of a killed process sees).
     */
    function halfUpload(url: string, a: RawAssignment, body: Uint8Array) {
      let sent!: () => void;
      const written = new Promise<void>((r) => (sent = r));
      const ended = new Promise<string>((resolve) => {
        const req = http.request(
          `${url}${new URL(a.upload_url).pathname}`,
          {
            method: 'POST',
            headers: {
              authorization: `Bearer ${a.token}`,
              'content-type': 'application/octet-stream',
              'content-length': String(body.byteLength),
              'x-device-credential': a.device!,
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(`answered ${res.statusCode}`));
          },
        );
        req.on('error', (e) => resolve(`error ${e.message}`));
        req.write(body.subarray(0, body.byteLength >> 1), () => sent());
      });
      return { written, ended };
    }

    async function killedAt(p: RoundhouseProcess, point: string): Promise<void> {
      const exit = await p.exited;
      expect({ signal: exit.signal, point: p.output.includes(`injected crash at ${point}`) }).toEqual({
        signal: 'SIGKILL',
        point: true,
      });
    }

    test('uploads cut off by a killed API process are retried against another one and count once', async () => {
      cluster = await startFaultCluster({ workers: 1, env: { WORKER_LOCK_MS: '2000' } });
      const survivor = cluster.apis[0]!;
      const afterAccept = await cluster.addApi({ ROUNDHOUSE_FAULTS: 'upload-after-accept:1' });
      const beforeAccept = await cluster.addApi({ ROUNDHOUSE_FAULTS: 'upload-before-accept:1' });
      const inFlight = await cluster.addApi();
      const id = await cluster.submit(
        vectorSumPlan(K, {
          rounds: 1,
          target_clients: CLIENTS,
          over_selection: 1,
          min_reports: CLIENTS,
          min_clients_in_aggregate: 2,
          selection_timeout_s: 300,
          reporting_deadline_s: 300,
        }),
      );
      const via = (...apis: ApiProcess[]): ClientOptions => ({ servers: () => apis.map((a) => a.url) });
      const assignments: RawAssignment[] = [];
      for (let c = 0; c < CLIENTS; c++)
        assignments.push(await checkinUntilAssigned(population, `d${c}`, via(survivor), 1));
      const body = (c: number) => vectorUpload(clientDelta(K, c, 1));
      let expected = 0;
      for (let c = 0; c < CLIENTS; c++) expected += sumOf(clientDelta(K, c, 1));

      // Stored, then the process died before answering: the retry finds it stored (409 UPLOAD_DUPLICATE).
      const d0 = await uploadUntilAccepted(assignments[0]!, body(0), via(afterAccept, survivor));
      await killedAt(afterAccept, 'upload-after-accept');
      expect({ tries: d0.tries, status: d0.final.status, code: d0.final.code }).toEqual({
        tries: 2,
        status: 409,
        code: 'UPLOAD_DUPLICATE',
      });

      // Checked, then the process died before storing it: the retry stores it.
      const d1 = await uploadUntilAccepted(assignments[1]!, body(1), via(beforeAccept, survivor));
      await killedAt(beforeAccept, 'upload-before-accept');
      expect({ tries: d1.tries, status: d1.final.status }).toEqual({ tries: 2, status: 202 });

      // Bodies half sent when the process is killed: nothing of them was stored; the retries store them.
      const half = [2, 3, 4].map((c) => halfUpload(inFlight.url, assignments[c]!, body(c)));
      await Promise.all(half.map((h) => h.written));
      await new Promise((r) => setTimeout(r, 300));
      await inFlight.kill('SIGKILL');
      for (const h of half) expect(await h.ended).toMatch(/^error /);
      for (const c of [2, 3, 4]) {
        const r = await uploadUntilAccepted(assignments[c]!, body(c), via(survivor));
        expect({ client: c, status: r.final.status }).toEqual({ client: c, status: 202 });
      }

      for (let c = 5; c < CLIENTS; c++) {
        const r = await uploadUntilAccepted(assignments[c]!, body(c), via(survivor));
        expect({ client: c, status: r.final.status }).toEqual({ client: c, status: 202 });
      }

      const info = await cluster.waitCompleted(id, 1);
      expect(info).toMatchObject({ reported: CLIENTS, aggregated_clients: CLIENTS, rejected: 0 });
      expect(info.output).toEqual({ total: expected, count: CLIENTS });
    }, 180_000);
  });
}
