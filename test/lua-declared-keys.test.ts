import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { SCRIPTS } from '../src/store/scripts';
import { eventually } from './support/cluster';
import { startFaultCluster, startOwnRedis, type FaultCluster, type OwnRedis } from './support/fault-harness';
import { vectorSumPlan, vectorUpload } from './support/plans';
import { assignedRaw, uploadRaw } from './support/raw-client';

// Every key a Lua script touches is one it declared in KEYS (issue 11, point 1): Redis Cluster routes a
// script by its KEYS and refuses, or worse, silently runs on the wrong node, what a script builds itself.
// An API process and a worker run plans through every path that ends or discards a round attempt (rounds
// completed with broadcast retention, attempts failed by deadlines until the round forgets old failures
// and the plan fails, a cancel with a committed partial, a pause and a resume, a delete) on a Redis of the
// test's own, while MONITOR records each script call with the commands it ran; COMMAND GETKEYS then names
// the keys of each of those commands.

const K = 4;
const population = `vectors${K}`;

interface ScriptCall {
  readonly name: string;
  readonly declared: Set<string>;
  readonly commands: string[][];
}

describe('Lua scripts touch only the keys they declare', () => {
  let redis: OwnRedis;
  let monitor: Redis;
  let cluster: FaultCluster;
  const calls: ScriptCall[] = [];
  const names = new Map(Object.values(SCRIPTS).map((s) => [s.sha, s.name]));

  beforeAll(async () => {
    redis = await startOwnRedis();
    const base = new Redis(redis.url);
    monitor = await base.monitor();
    base.disconnect();
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      const [command, ...rest] = args;
      const verb = command?.toLowerCase();
      if (source !== 'lua' && (verb === 'evalsha' || verb === 'eval')) {
        const numkeys = Number(rest[1]);
        const script = rest[0]!;
        calls.push({
          name:
            verb === 'evalsha'
              ? (names.get(script) ?? `a BullMQ script ${script.slice(0, 8)}`)
              : evalName(script, names),
          declared: new Set(rest.slice(2, 2 + numkeys)),
          commands: [],
        });
      } else if (source === 'lua') {
        calls.at(-1)?.commands.push(args);
      }
    });
    cluster = await startFaultCluster({
      redisUrl: redis.url,
      workers: 1,
      env: {
        SCHEDULE_MIN_SECONDS: '0',
        RETAIN_BROADCASTS: '1',
        RETAIN_FAILED_ATTEMPTS: '1',
        MAX_ROUND_ATTEMPTS: '3',
        RECONCILE_INTERVAL_MS: '300',
      },
    });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
    monitor?.disconnect();
    await redis?.stop();
  });

  test('through completed, failed, cancelled, paused, resumed and deleted plans', async () => {
    // Three rounds that complete: complete-round and, with RETAIN_BROADCASTS=1, trim-broadcast each time.
    const done = await cluster.submit(
      vectorSumPlan(K, {
        rounds: 3,
        target_clients: 2,
        min_reports: 2,
        min_clients_in_aggregate: 1,
        over_selection: 1,
        selection_timeout_s: 60,
        reporting_deadline_s: 60,
      }),
    );
    for (let round = 1; round <= 3; round++) {
      if (round === 2) {
        expect((await cluster.operator(`/v1/plans/${done}/pause`, { method: 'POST' })).status).toBe(200);
        expect((await cluster.operator(`/v1/plans/${done}/resume`, { method: 'POST' })).status).toBe(200);
      }
      for (let c = 0; c < 2; c++) {
        const a = await assignedRaw(cluster.url, population, `dev-${round}-${c}`);
        expect((await uploadRaw(a, vectorUpload(new Float32Array(K).fill(c + 1)))).status).toBe(202);
      }
      await cluster.waitCompleted(done, round);
    }

    // A plan whose attempts all fail at their selection deadline (nobody checks in): deadline fails each,
    // the round forgets its older failures (RETAIN_FAILED_ATTEMPTS=1), and the plan fails after three.
    const failing = await cluster.submit({
      ...vectorSumPlan(K, {
        rounds: 1,
        target_clients: 2,
        min_reports: 2,
        over_selection: 1,
        selection_timeout_s: 1,
        reporting_deadline_s: 2,
      }),
      client_data: {
        collection: 'nobody-here',
        element: { kind: 'tensor', dtype: 'float32', shape: [null] },
        batch_size: 4,
      },
    });
    await eventually(
      'the failing plan to fail',
      async () => {
        const res = await cluster.operator(`/v1/plans/${failing}`);
        return ((await res.json()) as { status: string }).status === 'failed' ? true : undefined;
      },
      60_000,
    );

    // A cancel while a worker's partial of the attempt is committed: set-status drops it.
    const cancelled = await cluster.submit(
      vectorSumPlan(K, {
        rounds: 1,
        target_clients: 3,
        min_reports: 3,
        min_clients_in_aggregate: 1,
        over_selection: 1,
        selection_timeout_s: 60,
        reporting_deadline_s: 60,
      }),
    );
    const a = await assignedRaw(cluster.url, population, 'dev-cancel');
    expect((await uploadRaw(a, vectorUpload(new Float32Array(K).fill(5)))).status).toBe(202);
    await eventually('the partial to be committed', async () =>
      calls.some((c) => c.name === 'commit-partial' && [...c.declared].some((k) => k.includes(cancelled)))
        ? true
        : undefined,
    );
    expect((await cluster.operator(`/v1/plans/${cancelled}/cancel`, { method: 'POST' })).status).toBe(200);
    expect((await cluster.operator(`/v1/plans/${cancelled}`, { method: 'DELETE' })).status).toBe(200);

    // What every script call touched, against what it declared.
    const getKeys = new Redis(redis.url);
    try {
      const undeclared: string[] = [];
      const otherSlot: string[] = [];
      let bull = 0;
      for (const call of calls) {
        const ours = !call.name.startsWith('a BullMQ');
        if (!ours) bull++;
        const slots = new Set([...call.declared].map((k) => calculateSlot(k)));
        for (const command of call.commands) {
          const keys = (await getKeys.call('COMMAND', 'GETKEYS', ...command).catch(() => [])) as string[];
          for (const key of keys) {
            const where = `${call.name}: ${command.join(' ').slice(0, 120)}`;
            // Ours declare every key. BullMQ's own scripts build job keys from the queue prefix they are
            // given, which carries a hash tag (BullMQ's documented way to run on a cluster): those keys
            // must at least share the declared keys' slot.
            if (ours && !call.declared.has(key)) undeclared.push(where);
            if (!slots.has(calculateSlot(key))) otherSlot.push(where);
          }
        }
      }
      expect(undeclared.slice(0, 10)).toEqual([]);
      expect(otherSlot.slice(0, 10)).toEqual([]);
      expect(bull).toBeGreaterThan(0);
    } finally {
      getKeys.disconnect();
    }

    // The scripts that end or discard an attempt ran, and ran commands on the attempt's data.
    const ran = new Set(calls.map((c) => c.name));
    for (const name of [
      'open-round',
      'try-assign',
      'accept-upload',
      'commit-partial',
      'complete-round',
      'trim-broadcast',
      'deadline',
      'set-status',
      'fail-plan',
      'acquire-lease',
    ]) {
      expect({ name, ran: ran.has(name) }).toEqual({ name, ran: true });
    }
    const unlinks = (name: string) =>
      calls
        .filter((c) => c.name === name)
        .flatMap((c) => c.commands.filter((cmd) => cmd[0]?.toLowerCase() === 'unlink'));
    // complete-round dropped partials; set-status (cancel) dropped the committed partial; deadline failed
    // attempts and forgot the older failed attempt hash.
    expect(unlinks('complete-round').some((cmd) => cmd.some((k) => k.includes(':partial:')))).toBe(true);
    expect(unlinks('set-status').some((cmd) => cmd.some((k) => k.includes(':partial:')))).toBe(true);
    expect(unlinks('deadline').some((cmd) => cmd.length === 2 && /:r:1\.\d+$/.test(cmd[1]!))).toBe(true);
    expect(unlinks('trim-broadcast').some((cmd) => cmd[1]?.endsWith(':broadcast'))).toBe(true);
    console.log(
      `declared keys: ${calls.length} script calls, ${calls.reduce((n, c) => n + c.commands.length, 0)} commands in them, ${ran.size} scripts: ${[...ran].sort().join(', ')}`,
    );
  }, 170_000);
});

/** An EVAL's script, named by the script whose source it is. */
function evalName(source: string, names: Map<string, string>): string {
  const script = Object.values(SCRIPTS).find((s) => s.source === source);
  return script ? (names.get(script.sha) ?? script.name) : 'a BullMQ EVAL';
}
