import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { encodePartial } from '../src/aggregation/partial';
import { SecureSum } from '../src/aggregation/secure-sum';
import { initBackend } from '../src/compute/backend';
import type { TffType } from '../src/compute/types';
import { checkPlan } from '../src/plan/validate';
import { PLAN_LIBRARY } from '../src/plans';
import { leafSizes, SECURE_KINDS, type SecureParams } from '../src/rounds/form-steps';
import { deleteKeys, eventually, startCluster, type Cluster } from './support/cluster';
import { checkinBody, int32ScalarUpload } from './support/fuzz/targets';
import {
  digestForms,
  newScanStats,
  scanOnce,
  type AtRestViolation,
  type ScanRules,
} from './support/fuzz/redis-scan';
import * as tf from '@tensorflow/tfjs';

// Nothing per client at rest (issue 7, point 4): while a 3-round sum plan runs on an API process and two
// worker processes, a scanner reads every key of the store and of its queue over and over and finds no plain
// hash of any upload, no committed partial covering fewer devices than min_clients_in_aggregate, and no
// device id once that device's round attempt has ended. The rounds still give the exact sums.

const MIN_CLIENTS = 3;
/** Two workers share the first TARGET - 1 = 5 uploads, so one of them folds at least MIN_CLIENTS while open. */
const TARGET = 6;
const ROUNDS = 3;
/** Distinct values per client slot; round r adds 1000 * r, so every upload of the test differs. */
const BASE_VALUES = [7, 31, 113, 409, 1201, 3001];
/** Uploads are spaced out so that each worker's batches are small: a worker committing per batch shows. */
const UPLOAD_SPACING_MS = 250;

interface Round {
  phase: string;
  round: number;
  attempt: number;
  output: unknown;
  aggregated_clients: number;
  error: unknown;
}

function sumPlan(population: string): Record<string, unknown> {
  return {
    ...(PLAN_LIBRARY['federated-sum']!.build({}) as unknown as Record<string, unknown>),
    population,
    schedule: {
      rounds: ROUNDS,
      target_clients: TARGET,
      over_selection: 1,
      min_reports: TARGET,
      min_clients_in_aggregate: MIN_CLIENTS,
      selection_timeout_s: 300,
      reporting_deadline_s: 300,
    },
  };
}

function noSecureParams(types: { V: readonly TffType[] }): SecureParams {
  // The plain sum plan has no secure sums: each kind has no parameters.
  for (const V of types.V) expect(leafSizes(V)).toEqual([]);
  return { bitwidth: [], max_input: [], modulus: [] };
}

describe('Redis at rest during a 3-round sum with two workers', () => {
  let cluster: Cluster;
  const redis = new Redis('redis://127.0.0.1:6379');
  beforeAll(async () => {
    await initBackend();
    cluster = await startCluster({ workers: 2 });
  });
  afterAll(async () => {
    await cluster?.stop();
    redis.disconnect();
  });

  test('the scanner flags a planted upload hash, a one-client partial and an ended device id', async () => {
    // The checks below can only pass for the right reason if they can fail: plant each violation under a
    // prefix of its own and scan it.
    const plan = sumPlan('planted');
    const { types } = checkPlan(plan);
    const params = noSecureParams(types);
    const prefix = `rh-planted-${process.pid}-${randomBytes(4).toString('hex')}`;
    const upload = Buffer.from('the bytes of an upload of 31337');
    const device = `dev-${randomBytes(8).toString('hex')}`;
    const acc = tf.scalar(31337, 'int32');
    const sums = SECURE_KINDS.map((kind, k) => new SecureSum(kind, params[kind], leafSizes(types.V[k]!)));
    const partial = encodePartial(types, acc, sums, 1);
    acc.dispose();
    try {
      await redis.hset(`${prefix}:{p}:r:1.1:tasks`, 't1', `u:${digestForms(upload)[0]!.toString()}`);
      await redis.set(`${prefix}:{p}:r:1.1:partial:w1`, Buffer.from(partial));
      await redis.rpush(`{${prefix}}:agg:log`, `checked in ${device}`);
      const rules: ScanRules = {
        types,
        params,
        minClients: MIN_CLIENTS,
        uploadDigests: digestForms(upload),
        endedDevices: new Set([device]),
      };
      const roundKey = `${prefix}:{p}:r:1.1`;
      await redis.hset(roundKey, 'phase', 'reporting');
      const stats = newScanStats();
      const found = await scanOnce(redis, prefix, rules, stats);
      expect(found.map((v) => v.what).sort()).toEqual([
        'a committed partial covering 1 clients (minimum 3)',
        `holds device id ${device} after its round attempt ended`,
        `holds the SHA-256 of an upload (${digestForms(upload)[0]!.toString()})`,
      ]);
      expect(stats.partialClients).toEqual([1]);
      expect(stats.openPartialClients).toEqual([1]);
      // Once the attempt closed, a worker may commit what it holds (issue 7, point 4): not a violation.
      await redis.del(`${prefix}:{p}:r:1.1:tasks`);
      await redis.lpop(`{${prefix}}:agg:log`);
      await redis.hset(roundKey, 'phase', 'finalizing');
      const closed = newScanStats();
      expect(await scanOnce(redis, prefix, rules, closed)).toEqual([]);
      expect(closed.closedSubMinimum).toBe(1);
      // And a partial covering enough clients passes while the attempt is open.
      await redis.hset(roundKey, 'phase', 'reporting');
      const acc3 = tf.scalar(3, 'int32');
      await redis.set(`${prefix}:{p}:r:1.1:partial:w1`, Buffer.from(encodePartial(types, acc3, sums, 3)));
      acc3.dispose();
      expect(await scanOnce(redis, prefix, rules, newScanStats())).toEqual([]);
    } finally {
      await deleteKeys(prefix);
    }
  });

  test('no upload hash, no partial below the minimum and no ended device id is ever at rest; the sums are exact', async () => {
    const population = `at-rest-${process.pid}-${randomBytes(3).toString('hex')}`;
    const plan = sumPlan(population);
    const { types } = checkPlan(plan);
    const rules: ScanRules = {
      types,
      params: noSecureParams(types),
      minClients: MIN_CLIENTS,
      uploadDigests: [],
      endedDevices: new Set(),
    };
    const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const { upload_type } = (await (await fetch(`${cluster.url}/v1/plans/${id}/client-plan`)).json()) as {
      upload_type: TffType;
    };

    // The scanner: scan after scan until the rounds are over, collecting every violation.
    const stats = newScanStats();
    const violations: AtRestViolation[] = [];
    let scanning = true;
    const scanner = (async () => {
      while (scanning) {
        violations.push(...(await scanOnce(redis, cluster.prefix, rules, stats)));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const rounds = async (): Promise<Round[]> =>
      ((await (await cluster.operator(`/v1/plans/${id}/rounds`)).json()) as { rounds: Round[] }).rounds;
    try {
      for (let r = 1; r <= ROUNDS; r++) {
        // Partials read while earlier rounds were open do not count for this one.
        const openSeen = stats.openPartialClients.length;
        const devices = BASE_VALUES.map(() => `dev-${randomBytes(8).toString('hex')}`);
        for (const [i, device] of devices.entries()) {
          if (i === devices.length - 1) {
            // Before the upload that closes the attempt, the scanner must have read a partial committed
            // while it was open: five uploads over two workers put at least MIN_CLIENTS into one of them,
            // and that worker commits them. Waiting for it makes the check below see it on a loaded machine.
            await eventually(`a partial of round ${r} committed while open`, async () =>
              stats.openPartialClients.length > openSeen ? true : undefined,
            );
          }
          // Round r opens just after round r - 1 completes: a check-in may come before it (a retry window).
          const assignment = await eventually(`device ${i} to get a task of round ${r}`, async () => {
            const checkin = await fetch(`${cluster.url}/v1/populations/${population}/checkin`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: checkinBody(device),
            });
            expect(checkin.status).toBe(200);
            return (
              (await checkin.json()) as { assignment?: { round: number; token: string; upload_url: string } }
            ).assignment;
          });
          expect(assignment.round).toBe(r);
          const bytes = int32ScalarUpload(upload_type, 1000 * r + BASE_VALUES[i]!);
          rules.uploadDigests.push(...digestForms(bytes));
          const up = await fetch(assignment.upload_url, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${assignment.token}`,
              'content-type': 'application/octet-stream',
              // The device presents itself again at upload (anonymous mode: its id).
              'x-device-credential': device,
            },
            body: bytes as BodyInit,
          });
          expect(up.status).toBe(202);
          await new Promise((res) => setTimeout(res, UPLOAD_SPACING_MS));
        }
        const done = await eventually(`round ${r} to complete`, async () => {
          const all = await rounds();
          const failed = all.find((x) => x.round === r && x.phase === 'failed');
          if (failed) throw new Error(`round ${r} failed: ${JSON.stringify(failed.error)}`);
          return all.find((x) => x.round === r && x.phase === 'completed');
        });
        // Nothing of the finished attempt's partials remains.
        expect(await redis.keys(`${cluster.prefix}:{${id}}:r:${r}.*:partial:*`)).toEqual([]);
        // From here on, none of this round's devices may appear anywhere.
        for (const d of devices) rules.endedDevices.add(d);
        expect(done.output).toEqual({ sum: BASE_VALUES.reduce((a, v) => a + 1000 * r + v, 0) });
        expect(done.aggregated_clients).toBe(TARGET);
      }
      // A few more scans of the finished plan.
      const until = stats.scans + 3;
      await eventually('three scans after the last round', async () =>
        stats.scans >= until ? true : undefined,
      );
    } finally {
      scanning = false;
      await scanner;
    }

    // Each distinct violation once (a scan every few ms sees the same one many times).
    const distinct = [...new Set(violations.map((v) => `${v.key}: ${v.what}`))];
    expect(distinct.slice(0, 12)).toEqual([]);
    // The scanner saw the rounds: it read their task hashes and the queue's keys, many times over.
    expect(stats.scans).toBeGreaterThan(10);
    const names = [...stats.keyNames];
    expect(names.some((k) => /:r:\d+\.\d+/.test(k))).toBe(true);
    // Key names are recorded with long hex ids masked, the prefix's random part included.
    const masked = cluster.prefix.replace(/[0-9a-f]{8,}/g, '<id>');
    expect(names.some((k) => k.startsWith(`{${masked}}:`))).toBe(true);
    // It decoded the workers' committed partials, and each one it read while its attempt took uploads
    // covered at least min_clients_in_aggregate devices.
    expect(stats.partialClients.length).toBeGreaterThan(0);
    expect(stats.openPartialClients.filter((n) => n < MIN_CLIENTS)).toEqual([]);
    console.log(
      `at-rest scan: ${stats.scans} scans, ${stats.values} values; partials seen with clients ${JSON.stringify(stats.partialClients.slice(0, 40))} (${stats.openPartialClients.length} while open), ${stats.closedSubMinimum} below the minimum after their attempt closed`,
    );
  }, 180_000);
});
