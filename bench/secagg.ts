// Benchmark: what SecAgg+ costs, in one process (no server), with SecAggClientRound playing every client of a
// cohort and the protocol core's server functions between them, messages passing as the JSON the routes send.
//  (a) A client's time for each step (R0 advertise, R1 shareKeys, R2 maskInput, R3 unmask) and the bytes of
//      every message it sends and receives, with the graph finder's k neighbours against all-to-all (plain
//      SecAgg, the complete graph) at n = 200, and with k neighbours at n = 1000 (all-to-all cannot run there:
//      Shamir shares over GF(256) reach 255 holders at most).
//  (b) The finalizer's unmasking of a 100k-element sum over a cohort with dropouts, against folding the same
//      number of plain 100k-element sums (what a plain secure-sum round does), measured in the same run.
//   npm run bench:secagg   (or: node dist/bench/secagg.js [--n 200] [--big-n 1000] [--elements 10000]
//                           [--vector 100000]; --big-n 0 skips n = 1000)
import { SecureSum } from '../src/aggregation/secure-sum';
import { writeBundle } from '../src/codec';
import { newSession } from '../src/secagg/crypto';
import { hararyGraph } from '../src/secagg/graph';
import { flatByKind, fromLanes, maskingModuli, splitByKind, type PerKind } from '../src/secagg/masks';
import { completeGraph, secAggParameters, type ThreatModel } from '../src/secagg/params';
import { toBase64Url, type R0Advertise } from '../src/secagg/protocol';
import { SecAggClientRound } from '../src/secagg/protocol-client';
import {
  checkAdvertise,
  checkShares,
  checkUnmask,
  survivorsMessage,
  unmaskSums,
  unmaskingPlan,
  type UnmaskInput,
} from '../src/secagg/protocol-server';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** The schema's default threat model (src/secagg/setup.ts). */
const THREAT: ThreatModel = { dropoutRate: 0.33, adversarialRate: 0.05, adversaryClass: 'curious' };
const BITWIDTH = 16;
const STEPS = ['R0', 'R1', 'R2', 'R3'] as const;
/** The messages of a round from the client's side: `up` it sends, `down` it receives. */
const MESSAGES = ['R0 up', 'R1 down', 'R1 up', 'R2 down', 'R2 up', 'R3 down', 'R3 up'] as const;

interface Cohort {
  readonly n: number;
  readonly degree: number;
  readonly threshold: number;
  readonly label: string;
}

/** One played round: per-client times and message sizes, and what the finalizer unmasks with. */
interface Played {
  readonly ms: Record<(typeof STEPS)[number], number[]>;
  readonly bytes: Record<(typeof MESSAGES)[number], number[]>;
  readonly u3: readonly number[];
  readonly uploads: readonly PerKind<Int32Array>[];
  readonly unmask: Omit<UnmaskInput, 'maskedSums'>;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const sizeOf = (message: unknown): number => Buffer.byteLength(JSON.stringify(message));
/** A message as the other side reads it: through JSON, as over HTTP. */
const wire = <T>(message: T): T => JSON.parse(JSON.stringify(message)) as T;

/** Plays one round of `cohort` with one V1 tensor per client; `drop` says who leaves after R1 and R2. */
async function play(
  cohort: Cohort,
  values: (i: number) => Int32Array,
  drop: { readonly r1: (i: number) => boolean; readonly r2: (i: number) => boolean } = {
    r1: () => false,
    r2: () => false,
  },
): Promise<Played> {
  const { n, degree, threshold } = cohort;
  const graph = hararyGraph(n, degree, newSession());
  const hood = (i: number): readonly number[] => graph.neighbourhood(i);
  const params: PerKind<number> = { bitwidth: [BITWIDTH], max_input: [], modulus: [] };
  const session = newSession();
  const ids = Array.from({ length: n }, (_, i) => i);
  const ms = Object.fromEntries(STEPS.map((s) => [s, [] as number[]])) as Played['ms'];
  const bytes = Object.fromEntries(MESSAGES.map((m) => [m, [] as number[]])) as Played['bytes'];
  const timed = async <T>(step: (typeof STEPS)[number], f: () => T | Promise<T>): Promise<T> => {
    const t0 = now();
    const out = await f();
    ms[step].push(now() - t0);
    return out;
  };

  // R0 includes making the client's two key pairs (SecAggClientRound's constructor).
  const clients: SecAggClientRound[] = [];
  const adverts: R0Advertise[] = [];
  for (const _ of ids) {
    const advert = await timed('R0', () => {
      const client = new SecAggClientRound();
      clients.push(client);
      return client.advertise();
    });
    adverts.push(wire(advert));
  }
  adverts.forEach((a) => bytes['R0 up'].push(sizeOf(a)));
  const keys = adverts.map(checkAdvertise);

  const mailboxes = ids.map((): { from: number; ct: string }[] => []);
  for (const i of ids) {
    const message = {
      step: 'share',
      session: toBase64Url(session),
      index: i,
      n,
      degree,
      threshold,
      neighbours: hood(i).map((j) => ({ index: j, ...adverts[j]!.keys })),
    };
    const shares = wire(await timed('R1', () => clients[i]!.shareKeys(wire(message))));
    bytes['R1 down'].push(sizeOf(message));
    bytes['R1 up'].push(sizeOf(shares));
    checkShares(i, shares, hood);
    for (const { to, ct } of shares.shares) mailboxes[to]!.push({ from: i, ct });
  }

  const u3: number[] = [];
  const uploads: PerKind<Int32Array>[] = [];
  for (const i of ids.filter((i) => !drop.r1(i))) {
    const message = { step: 'upload', shares: mailboxes[i]!, secure_params: params, n_max: n };
    const values_ = { bitwidth: [values(i)], max_input: [], modulus: [] };
    const outcome = await timed('R2', () => clients[i]!.maskInput(wire(message), values_, params, n));
    if (outcome.status !== 'masked') throw new Error(`client ${i} aborted: ${outcome.error.message}`);
    const lanes = outcome.lanes.bitwidth[0]!;
    bytes['R2 down'].push(sizeOf(message));
    bytes['R2 up'].push(
      writeBundle([{ name: '1', dtype: 'int32', shape: [2, lanes.length / 2], data: lanes }]).length,
    );
    u3.push(i);
    uploads.push(outcome.lanes);
  }

  const plan = unmaskingPlan({ threshold, neighbourhood: hood, u2: ids, u3 });
  const shares = new Map<number, Uint8Array[]>();
  for (const i of u3.filter((i) => !drop.r2(i))) {
    const message = { step: 'unmask', ...survivorsMessage(plan, i) };
    const answer = wire(await timed('R3', () => clients[i]!.unmask(wire(message))));
    bytes['R3 down'].push(sizeOf(message));
    bytes['R3 up'].push(sizeOf(answer));
    for (const { of, share } of checkUnmask(plan, i, answer))
      shares.set(of, [...(shares.get(of) ?? []), share]);
  }
  const moduli = maskingModuli(params, n);
  return {
    ms,
    bytes,
    u3,
    uploads,
    unmask: { plan, session, maskKeys: keys.map((k) => k.s), shares, moduli },
  };
}

/** Runs `f` once to warm it up, then times a second run; its time and result. */
function warmTime<T>(f: () => T): [number, T] {
  f();
  const t0 = now();
  const out = f();
  return [now() - t0, out];
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const randomValues = (size: number) => (): Int32Array =>
  Int32Array.from({ length: size }, () => Math.floor(Math.random() * 2 ** BITWIDTH));

/** (a): one line of times and one of bytes per cohort; returns the mean total time per client. */
async function clientCosts(cohort: Cohort, elements: number): Promise<number> {
  const t0 = now();
  const played = await play(cohort, randomValues(elements));
  const times = STEPS.map((s) => mean(played.ms[s]));
  const total = times.reduce((a, b) => a + b, 0);
  console.log(
    `${cohort.label.padEnd(34)} ${times.map((t) => t.toFixed(1).padStart(8)).join('')} ${total.toFixed(1).padStart(9)} ms/client  (cohort played in ${((now() - t0) / 1000).toFixed(0)} s)`,
  );
  console.log(
    `${''.padEnd(34)} bytes ${MESSAGES.map((m) => `${m} ${Math.round(mean(played.bytes[m]))}`).join(', ')}`,
  );
  return total;
}

/** (b): unmasking a `size`-element sum of an n = `n` cohort with dropouts, against plain and masked folds. */
async function unmasking(n: number, size: number): Promise<void> {
  const { degree, threshold } = secAggParameters(n, THREAT);
  // 10% leave after sharing their keys, 5% more after uploading: spread around the cohort.
  const drop = { r1: (i: number) => i % 10 === 3, r2: (i: number) => i % 20 === 7 };
  const inputs = Array.from({ length: n }, randomValues(size));
  const played = await play({ n, degree, threshold, label: '' }, (i) => inputs[i]!, drop);
  const { u3, uploads, unmask } = played;
  const moduli = flatByKind(unmask.moduli);

  // The baseline: a plain secure-sum round folds the same number of plain vectors of the same size.
  const [plainMs, plain] = warmTime(() => {
    const sum = new SecureSum('bitwidth', [BITWIDTH], [size]);
    for (const i of u3) sum.add([inputs[i]!]);
    return sum;
  });
  // What SecAgg's workers do instead: decode each upload's lanes and add them modulo M.
  const [maskedMs, masked] = warmTime(() => {
    const sum = new SecureSum('masked', moduli, [size]);
    for (const upload of uploads) sum.add(flatByKind(upload).map((lanes, t) => fromLanes(lanes, moduli[t]!)));
    return sum;
  });
  const t0 = now();
  const exact = await unmaskSums({ ...unmask, maskedSums: splitByKind(masked.partialSums(), unmask.moduli) });
  const unmaskMs = now() - t0;

  const ok = exact.bitwidth[0]!.every((x, k) => x === plain.partialSums()[0]![k]);
  const keys = unmask.plan.needs.filter((need) => need.kind === 's');
  const pairwise = keys.reduce((a, need) => a + need.holders.length, 0);
  console.log(
    `n = ${n}, k = ${degree}, t = ${threshold}: ${n - u3.length} left after R1, ${u3.filter(drop.r2).length} after R2; ` +
      `U3 = ${u3.length} uploads of ${size} elements (M = 2^${Math.log2(moduli[0]!)}); unmasking rebuilds ` +
      `${unmask.plan.needs.length - keys.length} self-mask seeds and ${keys.length} mask keys (${pairwise} pairwise masks); exact: ${ok ? 'yes' : 'NO'}`,
  );
  const line = (label: string, ms: number): void =>
    console.log(`${label.padEnd(48)} ${ms.toFixed(1).padStart(8)} ms`);
  line(`plain fold of ${u3.length} x ${size} (baseline)`, plainMs);
  line(`masked fold of ${u3.length} x ${size} (decode, add mod M)`, maskedMs);
  line(`unmaskSums`, unmaskMs);
  console.log(
    `ratio unmask/plain fold: ${(unmaskMs / plainMs).toFixed(1)}x; (masked fold + unmask)/plain fold: ${((maskedMs + unmaskMs) / plainMs).toFixed(1)}x`,
  );
  if (!ok) throw new Error('the unmasked sum is not the plain sum');
}

async function main(): Promise<void> {
  const n = arg('--n', 200);
  const bigN = arg('--big-n', 1000);
  const elements = arg('--elements', 10_000);
  const vector = arg('--vector', 100_000);
  console.log(`SecAgg+ in one process, node ${process.version}; threat model ${JSON.stringify(THREAT)}`);
  const plainUpload = writeBundle([
    { name: '1', dtype: 'int32', shape: [elements], data: new Int32Array(elements) },
  ]).length;
  console.log(
    `(a) client cost per round, one V1 tensor of ${elements} elements (bitwidth ${BITWIDTH}, ${plainUpload} bytes unmasked), no dropouts`,
  );
  console.log(`${'cohort'.padEnd(34)} ${STEPS.map((s) => `${s} ms`.padStart(8)).join('')}     total`);
  const k = secAggParameters(n, THREAT);
  const all = completeGraph(n, THREAT);
  const kTotal = await clientCosts(
    { n, ...k, label: `n = ${n}, k = ${k.degree} (t = ${k.threshold})` },
    elements,
  );
  const allTotal = await clientCosts(
    { n, ...all, label: `n = ${n}, all-to-all (t = ${all.threshold})` },
    elements,
  );
  console.log(`ratio all-to-all/k at n = ${n}: ${(allTotal / kTotal).toFixed(1)}x`);
  if (bigN > 0) {
    const big = secAggParameters(bigN, THREAT);
    await clientCosts(
      { n: bigN, ...big, label: `n = ${bigN}, k = ${big.degree} (t = ${big.threshold})` },
      elements,
    );
  }
  console.log(`(b) the finalizer's unmasking vs a plain-sum round`);
  await unmasking(n, vector);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
