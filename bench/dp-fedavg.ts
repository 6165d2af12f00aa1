// Benchmark: DP-FedAvg on the UCI digits (issue 10's table). 100 clients (an IID split of 80% of the data),
// 20 a round, the library's `fedavg --dp` plan run by the local runner, which applies exactly the server's
// mechanism (src/dp/mechanism.ts: the clip, the server's sums, the noise). For each noise multiplier z it
// prints the held-out accuracy after the rounds and the epsilon spent at delta 1e-5 under both accountings:
// no amplification (every round charged at q = 1, the default) and subsampled (q = 20/100). z = 0 is the
// non-private reference: the same plan, clip and rounds, without noise (epsilon infinite).
//   npm run bench:dp   (or: node dist/bench/dp-fedavg.js [--rounds 100] [--clip 1] [--z 0,0.5,1,2] [--seed 1])
import { initBackend } from '../src/compute/backend';
import { digitsClientExamples, loadDigits, trainTestSplit } from '../src/data/digits';
import { seededPermutation } from '../src/data/seeded';
import { epsilonAfter } from '../src/dp/accountant';
import { PLAN_LIBRARY } from '../src/plans';
import { LocalRunner } from '../src/runner/local-runner';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const CLIENTS = 100;
const PER_ROUND = 20;
const DELTA = 1e-5;

async function main(): Promise<void> {
  await initBackend();
  const rounds = Number(arg('--rounds', '100'));
  const clip = Number(arg('--clip', '1'));
  const seed = Number(arg('--seed', '1'));
  const zs = arg('--z', '0,0.5,1,2').split(',').map(Number);
  const { train, test } = trainTestSplit(loadDigits(), 0.2, seed);
  const order = seededPermutation(train.n, seed);
  const clients = new Map(
    Array.from({ length: CLIENTS }, (_, c) => {
      const idx = Array.from(order).filter((_, i) => i % CLIENTS === c);
      return [`client-${c}`, digitsClientExamples(train, idx)] as const;
    }),
  );
  const heldout = digitsClientExamples(
    test,
    Array.from({ length: test.n }, (_, i) => i),
  );
  console.log(
    `DP-FedAvg, digits: ${CLIENTS} clients (${train.n} examples), ${PER_ROUND} a round, ${rounds} rounds, clip ${clip}, delta ${DELTA}`,
  );
  const rows: string[][] = [];
  for (const z of zs) {
    const plan = PLAN_LIBRARY.fedavg!.build({
      dp: true,
      clip,
      noiseMultiplier: z,
      // The budget the rounds spend without amplification: the plan runs them all (none without noise).
      ...(z > 0
        ? {
            targetEpsilon:
              epsilonAfter(rounds, { samplingRate: 1, noiseMultiplier: z, delta: DELTA }).epsilon *
              (1 + 1e-9),
          }
        : {}),
      targetClients: PER_ROUND,
      overSelection: 1,
      rounds,
    });
    const started = Date.now();
    const runner = new LocalRunner(plan, clients, { seed, evaluationData: heldout });
    let accuracy = NaN;
    try {
      for (const r of runner.rounds()) {
        const m = r.evaluation as { accuracy?: number } | undefined;
        if (m?.accuracy !== undefined) accuracy = m.accuracy;
      }
    } finally {
      runner.dispose();
    }
    const eps = (q: number): string => {
      if (z === 0) return 'inf (no noise)';
      return epsilonAfter(rounds, { samplingRate: q, noiseMultiplier: z, delta: DELTA }).epsilon.toPrecision(
        3,
      );
    };
    rows.push([
      String(z),
      accuracy.toFixed(3),
      eps(1),
      eps(PER_ROUND / CLIENTS),
      `${((Date.now() - started) / 1000).toFixed(0)} s`,
    ]);
    console.log(`  z ${z}: accuracy ${accuracy.toFixed(3)}`);
  }
  const header = [
    'noise multiplier z',
    'held-out accuracy',
    'epsilon, no-amplification (q = 1)',
    `epsilon, subsampled (q = ${PER_ROUND / CLIENTS})`,
    'time',
  ];
  console.log(`\n| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
