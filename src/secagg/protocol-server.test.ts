import * as nodeCrypto from 'node:crypto';
import { appErrorOf, appErrorOfAsync } from '../app-error.jest';
import { newKeyPair, newSession } from './crypto';
import { toBase64Url, type R3Unmask } from './protocol';
import {
  checkAdvertise,
  checkShares,
  checkUnmask,
  survivorsMessage,
  unmaskSums,
  unmaskingPlan,
} from './protocol-server';
import { complete, ring, shareRound } from './round-harness.jest';

const key = () => toBase64Url(newKeyPair().publicKey);

describe('checkAdvertise', () => {
  it('decodes two 32-byte keys', () => {
    const c = newKeyPair().publicKey;
    const s = newKeyPair().publicKey;
    expect(checkAdvertise({ keys: { c: toBase64Url(c), s: toBase64Url(s) } })).toEqual({ c, s });
  });

  it.each([
    ['a low-order key (u = 0)', { keys: { c: key(), s: toBase64Url(new Uint8Array(32)) } }],
    [
      'a low-order key (u = 1)',
      { keys: { c: toBase64Url(Uint8Array.of(1, ...new Array(31).fill(0))), s: key() } },
    ],
    ['a 31-byte key', { keys: { c: toBase64Url(new Uint8Array(31).fill(9)), s: key() } }],
    ['padded base64', { keys: { c: `${key()}=`, s: key() } }],
    ['no keys', {}],
  ])('refuses %s', (_, message) => {
    expect(appErrorOf(() => checkAdvertise(message as never)).code).toBe('SECAGG_BAD_MESSAGE');
  });
});

describe('checkShares', () => {
  it('takes exactly one envelope for each member of the neighbourhood', async () => {
    const neighbourhood = ring(5, 3);
    const { clients, r1 } = await shareRound({ n: 5, neighbourhood, degree: 3, threshold: 2 });
    const shares = await clients[2]!.shareKeys(r1[2]!);
    expect(() => checkShares(2, shares, neighbourhood)).not.toThrow();
    const [a, b, c] = shares.shares;
    for (const bad of [
      [a!, b!],
      [a!, b!, c!, c!],
      [a!, b!, { ...c!, to: 4 }],
      [a!, b!, { ...c!, ct: a!.ct.slice(1) }],
    ]) {
      expect(appErrorOf(() => checkShares(2, { shares: bad }, neighbourhood)).code).toBe(
        'SECAGG_BAD_MESSAGE',
      );
    }
  });
});

describe('unmaskingPlan', () => {
  // A ring of 8 with N(i) = {i - 1, i, i + 1}; client 3 sent no shares, client 6 no masked input.
  const round = {
    threshold: 2,
    neighbourhood: ring(8, 3),
    u2: [0, 1, 2, 4, 5, 6, 7],
    u3: [0, 1, 2, 4, 5, 7],
  };

  it('asks the U3 neighbours of each survivor for b, of each dropout for s', () => {
    expect(unmaskingPlan(round).needs).toEqual([
      { of: 0, kind: 'b', holders: [0, 1, 7] },
      { of: 1, kind: 'b', holders: [0, 1, 2] },
      { of: 2, kind: 'b', holders: [1, 2] },
      { of: 4, kind: 'b', holders: [4, 5] },
      { of: 5, kind: 'b', holders: [4, 5] },
      { of: 6, kind: 's', holders: [5, 7] },
      { of: 7, kind: 'b', holders: [0, 7] },
    ]);
  });

  it("asks each client for N(i) ∩ U3 and N(i) ∩ (U2 \\ U3), the spec's R3 request", () => {
    const plan = unmaskingPlan(round);
    for (const i of round.u3) {
      const mine = round.neighbourhood(i).filter((j) => round.u2.includes(j));
      expect(survivorsMessage(plan, i)).toEqual({
        survivors: mine.filter((j) => round.u3.includes(j)),
        dropped: mine.filter((j) => !round.u3.includes(j)),
      });
    }
    expect(survivorsMessage(plan, 5)).toEqual({ survivors: [4, 5], dropped: [6] });
  });

  it('leaves out a dropout with no neighbour in U3 (no mask of it is in the sum)', () => {
    const plan = unmaskingPlan({
      threshold: 1,
      neighbourhood: ring(8, 3),
      u2: [0, 1, 2, 3, 4, 5, 6, 7],
      u3: [0, 1, 2, 3, 4],
    });
    expect(plan.needs.filter((n) => n.kind === 's')).toEqual([
      { of: 5, kind: 's', holders: [4] },
      { of: 7, kind: 's', holders: [0] },
    ]);
  });

  it('aborts with SECAGG_BELOW_THRESHOLD naming the clients that cannot be unmasked', () => {
    const error = appErrorOf(() =>
      unmaskingPlan({
        threshold: 2,
        neighbourhood: ring(8, 3),
        u2: [0, 1, 2, 3, 4, 5, 6, 7],
        u3: [0, 1, 2, 4, 6, 7],
      }),
    );
    expect(error.code).toBe('SECAGG_BELOW_THRESHOLD');
    expect(error.details[0]!.message).toBe('4 (1)');
  });

  it('refuses a U3 outside U2', () => {
    expect(() => unmaskingPlan({ ...round, u3: [3] })).toThrow('3 is in U3 but not in U2');
  });
});

describe('checkUnmask', () => {
  const plan = unmaskingPlan({
    threshold: 2,
    neighbourhood: ring(8, 3),
    u2: [0, 1, 2, 4, 5, 6, 7],
    u3: [0, 1, 2, 4, 5, 7],
  });
  const share = () => toBase64Url(new Uint8Array(nodeCrypto.randomBytes(33)));
  const answer: R3Unmask = {
    shares: [
      { of: 4, kind: 'b', share: share() },
      { of: 5, kind: 'b', share: share() },
      { of: 6, kind: 's', share: share() },
    ],
  };

  it('takes the shares asked for, by target', () => {
    expect(checkUnmask(plan, 5, answer).map((s) => [s.of, s.share.length])).toEqual([
      [4, 33],
      [5, 33],
      [6, 33],
    ]);
  });

  it.each<[string, R3Unmask['shares']]>([
    ['the wrong kind', [answer.shares[0]!, answer.shares[1]!, { ...answer.shares[2]!, kind: 'b' }]],
    ['an unasked share', [...answer.shares, { of: 0, kind: 'b', share: share() }]],
    ['a share twice', [...answer.shares, answer.shares[0]!]],
    ['a missing share', answer.shares.slice(1)],
    ['a short share', [answer.shares[0]!, answer.shares[1]!, { ...answer.shares[2]!, share: 'AAAA' }]],
  ])('refuses %s', (_, shares) => {
    expect(appErrorOf(() => checkUnmask(plan, 5, { shares })).code).toBe('SECAGG_BAD_MESSAGE');
  });
});

describe('unmaskSums', () => {
  const plan = unmaskingPlan({ threshold: 1, neighbourhood: complete(3), u2: [0, 1, 2], u3: [0, 1] });
  const base = {
    plan,
    session: newSession(),
    maskKeys: [0, 1, 2].map(() => newKeyPair().publicKey),
    moduli: { bitwidth: [16], max_input: [], modulus: [] },
    maskedSums: { bitwidth: [[1, 2]], max_input: [], modulus: [] },
  };
  const shareOf = (x: number) => Uint8Array.of(...nodeCrypto.randomBytes(32), x);

  it('aborts with SECAGG_BELOW_THRESHOLD naming the clients short of shares', async () => {
    const shares = new Map([[0, [shareOf(1)]]]);
    const error = await appErrorOfAsync(unmaskSums({ ...base, shares }));
    expect(error.code).toBe('SECAGG_BELOW_THRESHOLD');
    expect(error.details[0]!.message).toBe('1 (0), 2 (0)');
  });

  it('refuses shares that rebuild a mask key other than the advertised one (SECAGG_BAD_SHARE)', async () => {
    const shares = new Map([0, 1, 2].map((j) => [j, [shareOf(1)]]));
    const error = await appErrorOfAsync(unmaskSums({ ...base, shares }));
    expect(error.code).toBe('SECAGG_BAD_SHARE');
    expect(error.message).toContain("2's mask key");
  });
});
