import { appErrorOf } from '../app-error.jest';
import { combineShares, newKeyPair, newSession, publicKeyOf } from './crypto';
import { fromBase64Url, toBase64Url, type R1Neighbours, type R2Inbox } from './protocol';
import { SecAggClientRound } from './protocol-client';
import { complete, shareRound } from './round-harness.jest';

const PARAMS = { bitwidth: [8], max_input: [10], modulus: [7] };
const VALUES = { bitwidth: [[255, 0, 3]], max_input: [[10, 2]], modulus: [[-1, 12]] };

describe('SecAggClientRound R0 and R1', () => {
  /** An R1 message for `client` at index 1 of 3, with two strangers' keys beside its own. */
  function r1For(client: SecAggClientRound): R1Neighbours {
    const other = () => ({ c: toBase64Url(newKeyPair().publicKey), s: toBase64Url(newKeyPair().publicKey) });
    return {
      session: toBase64Url(newSession()),
      index: 1,
      n: 3,
      degree: 3,
      threshold: 2,
      neighbours: [
        { index: 0, ...other() },
        { index: 1, ...client.advertise().keys },
        { index: 2, ...other() },
      ],
    };
  }

  it('advertises two 32-byte public keys, the same every time', () => {
    const client = new SecAggClientRound();
    const { keys } = client.advertise();
    expect(fromBase64Url(keys.c, 32, 'c')).not.toEqual(fromBase64Url(keys.s, 32, 's'));
    expect(client.advertise()).toEqual({ keys });
  });

  it('sends one envelope per neighbour, itself included, and answers a retry alike', async () => {
    const client = new SecAggClientRound();
    const r1 = r1For(client);
    const shares = await client.shareKeys(r1);
    expect(shares.shares.map((s) => s.to)).toEqual([0, 1, 2]);
    expect(shares.shares.every((s) => fromBase64Url(s.ct, 102, 'ct').length === 102)).toBe(true);
    expect(await client.shareKeys(JSON.parse(JSON.stringify(r1)))).toBe(shares);
    const other = await client.shareKeys({ ...r1, threshold: 3 }).catch((e: unknown) => e);
    expect(other).toMatchObject({ code: 'SECAGG_BAD_MESSAGE' });
  });

  it.each<[string, (r1: R1Neighbours) => R1Neighbours]>([
    ['leaves the client out', (r1) => ({ ...r1, neighbours: r1.neighbours.filter((m) => m.index !== 1) })],
    [
      'swaps the client keys',
      (r1) => ({
        ...r1,
        neighbours: r1.neighbours.map((m) => ({ ...m, s: m.index === 1 ? r1.neighbours[0]!.s : m.s })),
      }),
    ],
    ['is not sorted', (r1) => ({ ...r1, neighbours: [...r1.neighbours].reverse() })],
    ['has threshold 0', (r1) => ({ ...r1, threshold: 0 })],
    ['has a threshold above the neighbourhood', (r1) => ({ ...r1, threshold: 4 })],
    ['has more neighbours than the degree', (r1) => ({ ...r1, degree: 2 })],
    ['puts the client outside the cohort', (r1) => ({ ...r1, n: 1 })],
    ['has a short session', (r1) => ({ ...r1, session: toBase64Url(new Uint8Array(16)) })],
    [
      'has 256 neighbours (Shamir over GF(256) has 255 x coordinates)',
      (r1) => ({
        ...r1,
        n: 256,
        degree: 256,
        neighbours: Array.from({ length: 256 }, (_, j) => ({ ...r1.neighbours[j === 1 ? 1 : 0]!, index: j })),
      }),
    ],
  ])('refuses an R1 message that %s', async (_, change) => {
    const client = new SecAggClientRound();
    const error = await client.shareKeys(change(r1For(client))).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SECAGG_BAD_MESSAGE' });
  });
});

describe('SecAggClientRound R2', () => {
  const round = () => shareRound({ n: 4, neighbourhood: complete(4), degree: 4, threshold: 3 });

  it('refuses an inbox before R1', () => {
    const error = appErrorOf(() => new SecAggClientRound().maskInput({ shares: [] }, VALUES, PARAMS, 4));
    expect(error.code).toBe('SECAGG_BAD_MESSAGE');
  });

  it('drops out, and keeps out, when the inbox is below the threshold', async () => {
    const { clients, mailboxes } = await round();
    const inbox = { shares: mailboxes[0]!.filter((m) => m.from < 2) };
    const outcome = clients[0]!.maskInput(inbox, VALUES, PARAMS, 4);
    expect(outcome).toMatchObject({ status: 'aborted', error: { code: 'SECAGG_BELOW_THRESHOLD' } });
    expect(clients[0]!.maskInput(inbox, VALUES, PARAMS, 4)).toBe(outcome);
    expect(appErrorOf(() => clients[0]!.unmask({ survivors: [0, 1, 2], dropped: [] })).code).toBe(
      'SECAGG_BAD_MESSAGE',
    );
  });

  it('refuses bad inboxes and bad values without losing its state, then masks', async () => {
    const { clients, mailboxes } = await round();
    const own = mailboxes[0]!;
    const tampered = own.map((m) => (m.from === 2 ? { ...m, ct: flipLast(m.ct) } : m));
    // Client 1's envelope for client 3, passed off as client 1's envelope for client 0.
    const misrouted = own.map((m) => (m.from === 1 ? mailboxes[3]!.find((x) => x.from === 1)! : m));
    const cases: [R2Inbox, unknown, string][] = [
      [{ shares: tampered }, VALUES, 'SECAGG_BAD_SHARE'],
      [{ shares: misrouted }, VALUES, 'SECAGG_BAD_SHARE'],
      [{ shares: own.filter((m) => m.from !== 0) }, VALUES, 'SECAGG_BAD_MESSAGE'],
      [{ shares: [...own, own[1]!] }, VALUES, 'SECAGG_BAD_MESSAGE'],
      [{ shares: [...own, { ...own[1]!, from: 9 }] }, VALUES, 'SECAGG_BAD_MESSAGE'],
      [{ shares: own }, { ...VALUES, bitwidth: [[256, 0, 0]] }, 'SECURE_SUM_OUT_OF_RANGE'],
      [{ shares: own }, { ...VALUES, max_input: [[1.5, 0]] }, 'SECURE_SUM_OUT_OF_RANGE'],
    ];
    for (const [inbox, values, code] of cases) {
      const error = appErrorOf(() => clients[0]!.maskInput(inbox, values as typeof VALUES, PARAMS, 4));
      expect([error.code, error.message]).toEqual([code, expect.any(String)]);
    }
    const outcome = clients[0]!.maskInput({ shares: own }, VALUES, PARAMS, 4);
    expect(outcome.status).toBe('masked');
    if (outcome.status !== 'masked') return;
    // [2, n] lanes per tensor: moduli 2^(8+2), 2^6 (4 * 10 + 1 <= 64), 7.
    expect([
      outcome.lanes.bitwidth[0]!.length,
      outcome.lanes.max_input[0]!.length,
      outcome.lanes.modulus[0]!.length,
    ]).toEqual([6, 4, 4]);
  });
});

describe('SecAggClientRound R3', () => {
  async function masked() {
    const shared = await shareRound({ n: 4, neighbourhood: complete(4), degree: 4, threshold: 3 });
    shared.clients.forEach((c, i) => c.maskInput({ shares: shared.mailboxes[i]! }, VALUES, PARAMS, 4));
    return shared;
  }

  it.each([
    ['names a neighbour twice as a survivor', { survivors: [0, 1, 1, 2], dropped: [] }, '1 is named twice'],
    [
      'asks for both kinds of share of one neighbour',
      { survivors: [0, 1, 2], dropped: [2] },
      '2 is named twice',
    ],
    ['names a client that sent no shares', { survivors: [0, 1, 2], dropped: [7] }, '7 sent it no shares'],
    ['leaves the client out', { survivors: [1, 2, 3], dropped: [] }, 'leave out the client itself'],
    ['lists the client as dropped', { survivors: [1, 2, 3], dropped: [0] }, 'leave out the client itself'],
    [
      'has fewer survivors than the threshold',
      { survivors: [0, 1], dropped: [2, 3] },
      'fewer than the threshold',
    ],
  ])('refuses a request that %s', async (_, request, why) => {
    const { clients } = await masked();
    const error = appErrorOf(() => clients[0]!.unmask(request));
    expect(error.code).toBe('SECAGG_UNMASK_REFUSED');
    expect(error.message).toContain(why);
    // A refusal changes nothing: an honest request is still answered.
    expect(clients[0]!.unmask({ survivors: [0, 1, 2, 3], dropped: [] }).shares).toHaveLength(4);
  });

  it('gives b shares of survivors and s shares of dropouts, which rebuild the dropout mask key', async () => {
    const { clients, keys } = await masked();
    const request = { survivors: [0, 1, 2], dropped: [3] };
    const answers = [0, 1, 2].map((i) => clients[i]!.unmask(request));
    expect(answers[0]!.shares.map((s) => [s.of, s.kind])).toEqual([
      [0, 'b'],
      [1, 'b'],
      [2, 'b'],
      [3, 's'],
    ]);
    const sharesOf3 = answers.map((a) => fromBase64Url(a.shares.find((s) => s.of === 3)!.share, 33, 'share'));
    expect(publicKeyOf(await combineShares(sharesOf3, 3))).toEqual(keys[3]!.s);
    expect(clients[0]!.unmask(request)).toBe(answers[0]);
    expect(appErrorOf(() => clients[0]!.unmask({ survivors: [0, 1, 2, 3], dropped: [] })).code).toBe(
      'SECAGG_BAD_MESSAGE',
    );
  });
});

function flipLast(ct: string): string {
  const bytes = fromBase64Url(ct, 102, 'ct');
  bytes[101]! ^= 1;
  return toBase64Url(bytes);
}
