/**
 * Devices, not tasks, against a real server (API and one aggregation worker in this process, real HTTP,
 * real Redis on a unique prefix): one task per device per round attempt, the device binding of task tokens
 * at upload, signed device credentials (ES256 and EdDSA against a JWKS file) and the 2-Sybil + 1-victim
 * attack on a sum with min_clients_in_aggregate 3, anonymous mode's rate limit.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import pino from 'pino';
import { bundleLeaves, writeBundle } from '../src/codec';
import type { TffType } from '../src/compute/types';
import { loadConfig, type Config } from '../src/config';
import { buildFederatedSum } from '../src/plans';
import { startInProcessServer, type InProcessServer } from '../src/simulate/in-process-server';
import type { RoundInfo } from '../src/store/types';
import { eventually } from './support/cluster';

const ISSUER = 'https://app.example';
const AUDIENCE = 'roundhouse-tests';
const servers: InProcessServer[] = [];
const logLines: string[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });

interface Api {
  readonly server: InProcessServer;
  submit(plan: unknown): Promise<string>;
  rounds(plan: string): Promise<RoundInfo[]>;
}

async function start(env: Record<string, string>, over: Partial<Config> = {}): Promise<Api> {
  const base = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', ...env });
  // The environment's device settings win over the in-process server's (which turns the rate limit off).
  const server = await startInProcessServer(base, log, { logLevel: 'info', devices: base.devices, ...over });
  servers.push(server);
  const op = { authorization: `Bearer ${server.operatorToken}`, 'content-type': 'application/json' };
  return {
    server,
    async submit(plan) {
      const res = await fetch(`${server.url}/v1/plans`, {
        method: 'POST',
        headers: op,
        body: JSON.stringify(plan),
      });
      expect(res.status).toBe(201);
      return ((await res.json()) as { id: string }).id;
    },
    async rounds(plan) {
      const res = await fetch(`${server.url}/v1/plans/${plan}/rounds`, { headers: op });
      return ((await res.json()) as { rounds: RoundInfo[] }).rounds;
    },
  };
}

afterAll(async () => {
  for (const s of servers) await s.close();
});

interface Assignment {
  readonly plan_id: string;
  readonly task_id: string;
  readonly round: number;
  readonly attempt: number;
  readonly token: string;
  readonly upload_url: string;
  readonly client_plan_url: string;
}

type Answer = {
  status: number;
  assignment?: Assignment;
  code?: string;
  reason?: string;
  retryAfter?: string;
};

async function checkin(
  api: Api,
  population: string,
  device: { id?: string; jwt?: string; served?: { plan_id: string; round: number }[] },
): Promise<Answer> {
  const res = await fetch(`${api.server.url}/v1/populations/${population}/checkin`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(device.jwt ? { authorization: `Bearer ${device.jwt}` } : {}),
    },
    body: JSON.stringify({
      ...(device.id ? { device_id: device.id } : {}),
      ...(device.served ? { served: device.served } : {}),
    }),
  });
  const body = (await res.json()) as {
    assignment?: Assignment;
    error?: { code: string; details: { message: string }[] };
  };
  return {
    status: res.status,
    assignment: body.assignment,
    code: body.error?.code,
    reason: body.error?.details[0]?.message,
    retryAfter: res.headers.get('retry-after') ?? undefined,
  };
}

/** A sum upload (U = int32 sum, no secure parts) of `value`, typed from the client plan. */
async function sumUpload(a: Assignment, value: number): Promise<Uint8Array> {
  const plan = (await (await fetch(a.client_plan_url)).json()) as { upload_type: TffType };
  return writeBundle(
    bundleLeaves(plan.upload_type).map(({ name, leaf }) => ({
      name,
      dtype: leaf.type.dtype,
      shape: [],
      data: Int32Array.of(value),
    })),
  );
}

async function upload(
  a: Assignment,
  bytes: Uint8Array,
  credential?: string,
): Promise<{ status: number; code?: string }> {
  const res = await fetch(a.upload_url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${a.token}`,
      'content-type': 'application/octet-stream',
      ...(credential !== undefined ? { 'x-device-credential': credential } : {}),
    },
    body: bytes as BodyInit,
  });
  const body = (await res.json()) as { error?: { code: string } };
  return { status: res.status, code: body.error?.code };
}

function sumPlan(population: string, schedule: Partial<Parameters<typeof buildFederatedSum>[0]> = {}) {
  return buildFederatedSum({
    collection: population,
    targetClients: 3,
    overSelection: 1,
    rounds: 2,
    ...schedule,
  });
}

describe('anonymous devices', () => {
  let api: Api;
  beforeAll(async () => {
    api = await start({});
  });

  it('logs plainly that anonymous mode does not resist Sybils', () => {
    expect(logLines.join('\n')).toMatch(/DEVICE_AUTH=anonymous.*does NOT resist Sybils/);
  });

  it('gives one device checking in 100 times one task per round (the same one), and other devices one each', async () => {
    const population = 'devices-repeat';
    const plan = await api.submit(sumPlan(population, { targetClients: 4 }));
    for (const round of [1, 2]) {
      // Round 2 opens just after round 1 completes: its check-ins must not come before it.
      await eventually(`round ${round} to select`, async () =>
        (await api.rounds(plan)).find((r) => r.round === round && r.phase === 'selecting'),
      );
      const answers = await Promise.all(
        Array.from({ length: 100 }, () => checkin(api, population, { id: 'the-same-device' })),
      );
      expect(answers.every((a) => a.status === 200)).toBe(true);
      // Every answer that carries a task carries the same one (a device whose answer was lost asks again
      // and gets its task once more); the others are retry windows.
      const mine = answers.filter((a) => a.assignment).map((a) => a.assignment!);
      expect(mine.length).toBeGreaterThanOrEqual(1);
      expect(new Set(mine.map((a) => a.task_id)).size).toBe(1);
      expect(mine[0]).toMatchObject({ plan_id: plan, round });
      const others = await Promise.all(
        ['b', 'c', 'd'].map((d) => checkin(api, population, { id: `device-${d}-${round}` })),
      );
      expect(others.every((a) => a.assignment?.round === round)).toBe(true);
      expect((await api.rounds(plan)).at(-1)).toMatchObject({ round, assigned: 4 });
      const bytes = await sumUpload(mine[0]!, 1);
      expect(await upload(mine[0]!, bytes, 'the-same-device')).toEqual({ status: 202 });
      for (const [i, a] of others.entries()) {
        const id = `device-${['b', 'c', 'd'][i]}-${round}`;
        expect((await upload(a.assignment!, bytes, id)).status).toBe(202);
      }
      await eventually(`round ${round} completed`, async () => {
        const r = (await api.rounds(plan)).find((x) => x.round === round && x.phase === 'completed');
        return r ? r : undefined;
      });
    }
    const rounds = await api.rounds(plan);
    expect(rounds.map((r) => [r.round, r.phase, r.aggregated_clients])).toEqual([
      [1, 'completed', 4],
      [2, 'completed', 4],
    ]);
  });

  it('binds the task to its device: another device, or none, cannot upload it', async () => {
    const population = 'devices-binding';
    await api.submit(sumPlan(population, { targetClients: 2 }));
    const a = (await checkin(api, population, { id: 'owner-device' })).assignment!;
    const bytes = await sumUpload(a, 5);
    expect(await upload(a, bytes, 'thief-device')).toEqual({ status: 403, code: 'DEVICE_MISMATCH' });
    expect(await upload(a, bytes)).toEqual({ status: 401, code: 'DEVICE_CREDENTIAL_INVALID' });
    expect(await upload(a, bytes, 'owner-device')).toEqual({ status: 202 });
  });

  it('offers no task of a round the device says it served, in a new attempt of that round', async () => {
    const population = 'devices-served';
    // The window must hold a check-in, a client-plan fetch and an upload on a loaded machine; the test
    // then waits (polling) for it to pass.
    const plan = await api.submit(
      sumPlan(population, { targetClients: 3, minReports: 2, selectionTimeout: 10 }),
    );
    const a = (await checkin(api, population, { id: 'served-device' })).assignment!;
    expect((await upload(a, await sumUpload(a, 1), 'served-device')).status).toBe(202);
    // Alone, the device is below min_reports: its attempt fails at the selection timeout and the next opens.
    await eventually('the next attempt of round 1 to open', async () =>
      (await api.rounds(plan)).find((r) => r.round === 1 && r.attempt > a.attempt && r.phase === 'selecting'),
    );
    const served = [{ plan_id: plan, round: 1 }];
    expect(await checkin(api, population, { id: 'served-device', served })).toMatchObject({
      status: 200,
      assignment: undefined,
    });
    // Without the hint the server cannot tell (a new attempt has a new round key): the hint is the SDK's part.
    const again = (await checkin(api, population, { id: 'served-device' })).assignment;
    expect(again?.round).toBe(1);
    expect(again?.attempt).toBeGreaterThan(a.attempt);
  });

  it('limits check-ins per source address with 429 and Retry-After', async () => {
    const limited = await start({ ANONYMOUS_RATE_LIMIT: '5', ANONYMOUS_RATE_WINDOW_S: '60' }, {});
    const answers: Answer[] = [];
    for (let i = 0; i < 7; i++)
      answers.push(await checkin(limited, 'devices-limited', { id: `device-${i}` }));
    expect(answers.slice(0, 5).every((a) => a.status === 200)).toBe(true);
    expect(answers[5]).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
    expect(Number(answers[5]!.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(answers[5]!.retryAfter)).toBeLessThanOrEqual(60);
  });
});

describe('signed device credentials', () => {
  let api: Api;
  let es256: KeyLike;
  let ed25519: KeyLike;
  let dir: string;

  /** A device JWT; `over` bends it the way an attacker or a broken issuer would. */
  async function credential(
    sub: string,
    over: {
      key?: KeyLike;
      alg?: string;
      kid?: string;
      iat?: number;
      exp?: number;
      iss?: string;
      aud?: string;
    } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const alg = over.alg ?? 'ES256';
    return new SignJWT({})
      .setProtectedHeader({ alg, kid: over.kid ?? (alg === 'EdDSA' ? 'ed' : 'es') })
      .setSubject(sub)
      .setIssuer(over.iss ?? ISSUER)
      .setAudience(over.aud ?? AUDIENCE)
      .setIssuedAt(over.iat ?? now)
      .setExpirationTime(over.exp ?? now + 300)
      .sign(over.key ?? (alg === 'EdDSA' ? ed25519 : es256));
  }

  beforeAll(async () => {
    const es = await generateKeyPair('ES256');
    const ed = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    es256 = es.privateKey;
    ed25519 = ed.privateKey;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-jwks-'));
    const jwks = {
      keys: [
        { ...(await exportJWK(es.publicKey)), kid: 'es', alg: 'ES256', use: 'sig' },
        { ...(await exportJWK(ed.publicKey)), kid: 'ed', alg: 'EdDSA', use: 'sig' },
      ],
    };
    fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify(jwks));
    api = await start({
      DEVICE_AUTH: 'signed',
      DEVICE_JWKS_FILE: path.join(dir, 'jwks.json'),
      DEVICE_JWT_ISSUER: ISSUER,
      DEVICE_JWT_AUDIENCE: AUDIENCE,
      DEVICE_JWT_MAX_LIFETIME_S: '3600',
    });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses missing, expired, unsigned, foreign and malformed credentials with 401 and a reason', async () => {
    const now = Math.floor(Date.now() / 1000);
    const foreign = (await generateKeyPair('ES256')).privateKey;
    const unsigned = (payload: object) =>
      `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.` +
      `${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`;
    const hs256 = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: 'es' })
      .setSubject('d')
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('a shared secret an attacker guessed'));
    const cases: [string, string | undefined, string][] = [
      ['missing', undefined, 'missing'],
      ['garbage', 'not-a-jwt', 'malformed'],
      ['expired', await credential('d', { iat: now - 1200, exp: now - 600 }), 'expired'],
      [
        'alg none',
        unsigned({ sub: 'd', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 300 }),
        'algorithm not allowed',
      ],
      ['HS256', hs256, 'algorithm not allowed'],
      ['foreign key, known kid', await credential('d', { key: foreign }), 'bad signature'],
      ['foreign key, unknown kid', await credential('d', { key: foreign, kid: 'mine' }), 'unknown key'],
      ['wrong issuer', await credential('d', { iss: 'https://evil.example' }), 'wrong issuer'],
      ['wrong audience', await credential('d', { aud: 'someone-else' }), 'wrong audience'],
      ['too long-lived', await credential('d', { exp: now + 7200 }), 'lifetime too long'],
    ];
    for (const [what, jwt, reason] of cases) {
      const answer = await checkin(api, 'signed-refusals', { jwt });
      expect([what, answer]).toMatchObject([
        what,
        { status: 401, code: 'DEVICE_CREDENTIAL_INVALID', reason },
      ]);
    }
    // A device id in the body is no credential in signed mode.
    expect(await checkin(api, 'signed-refusals', { id: 'i-say-i-am-a-device' })).toMatchObject({
      status: 401,
      reason: 'missing',
    });
    // Both algorithms are accepted.
    for (const alg of ['ES256', 'EdDSA']) {
      expect(
        (await checkin(api, 'signed-refusals', { jwt: await credential(`ok-${alg}`, { alg }) })).status,
      ).toBe(200);
    }
  });

  it('releases nothing to 2 Sybils and 1 victim on a sum with min_clients_in_aggregate 3', async () => {
    const population = 'signed-sybil';
    const plan = await api.submit(
      sumPlan(population, {
        targetClients: 3,
        minReports: 2,
        minClientsInAggregate: 3,
        // Long enough for the check-ins and uploads below on a loaded machine; the round ends by these
        // (the test polls for it).
        selectionTimeout: 10,
        reportingDeadline: 30,
        rounds: 1,
      }),
    );
    // The attacker's app backend issued it one credential; its two "devices" both present it.
    const attacker = await credential('attacker-device');
    const sybils = await Promise.all([
      checkin(api, population, { jwt: attacker }),
      checkin(api, population, { jwt: attacker }),
    ]);
    // One device, one task: the second check-in gets the same task again (or a retry window), never another.
    const held = sybils.filter((s) => s.assignment).map((s) => s.assignment!);
    expect(held.length).toBeGreaterThanOrEqual(1);
    expect(new Set(held.map((a) => a.task_id)).size).toBe(1);
    const victimJwt = await credential('victim-device');
    const victim = (await checkin(api, population, { jwt: victimJwt })).assignment!;
    expect(victim).toBeDefined();

    // The victim uploads 777; the attacker uploads zeros, and tries the victim's task with its own credential.
    expect(await upload(victim, await sumUpload(victim, 0), attacker)).toEqual({
      status: 403,
      code: 'DEVICE_MISMATCH',
    });
    expect((await upload(held[0]!, await sumUpload(held[0]!, 0), attacker)).status).toBe(202);
    expect((await upload(victim, await sumUpload(victim, 777), victimJwt)).status).toBe(202);

    const first = await eventually('round 1.1 to fail', async () => {
      const r = (await api.rounds(plan)).find((x) => x.round === 1 && x.attempt === 1);
      return r && (r.phase === 'failed' || r.phase === 'completed') ? r : undefined;
    });
    expect(first).toMatchObject({ phase: 'failed', assigned: 2, reported: 2 });
    expect(first.error).toMatch(/client/);
    const rounds = await api.rounds(plan);
    // The API shows an unreleased output as null.
    expect(rounds.map((r) => r.output ?? null)).toEqual(rounds.map(() => null));
    expect(JSON.stringify(rounds)).not.toContain('777');
  });
});
