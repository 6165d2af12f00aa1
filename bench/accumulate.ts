// Benchmark: one accumulate step of a 1M-float32 update through the interpreter, against a plain
// Float32Array add loop measured in the same run. Prints both throughputs and their ratio.
//   npm run bench:accumulate            (or: node dist/bench/accumulate.js [--floats N] [--iterations N])
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../src/compute/backend';
import { Interpreter } from '../src/compute/interpreter';
import { disposeValue, structValue, type Value } from '../src/compute/value';
import type { Computation } from '../src/generated/computation';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const N = arg('--floats', 1_000_000);
const ITER = arg('--iterations', 200);
const vec = { kind: 'tensor' as const, dtype: 'float32' as const, shape: [N] };
const accumulate: Computation = {
  parameter: {
    name: 'p',
    type: {
      kind: 'struct',
      fields: [
        { name: 'acc', type: { kind: 'struct', fields: [{ name: 'sum', type: vec }] } },
        { name: 'update', type: { kind: 'struct', fields: [{ name: 'delta', type: vec }] } },
      ],
    },
  },
  nodes: [
    { name: 'acc', op: 'field', args: ['p'], attrs: { name: 'acc' } },
    { name: 'u', op: 'field', args: ['p'], attrs: { name: 'update' } },
    { name: 'a', op: 'field', args: ['acc'], attrs: { name: 'sum' } },
    { name: 'd', op: 'field', args: ['u'], attrs: { name: 'delta' } },
    { name: 's', op: 'add', args: ['a', 'd'] },
    { name: 'out', op: 'struct', args: ['s'], attrs: { names: ['sum'] } },
  ],
  result: 'out',
};

function timeIt(label: string, f: () => void): number {
  f(); // warm-up: JIT, WASM memory growth
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ITER; i++) f();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const rate = (N * ITER) / s;
  console.log(
    `${label.padEnd(34)} ${(rate / 1e6).toFixed(1).padStart(8)} Mfloat/s  ${((s / ITER) * 1e3).toFixed(3).padStart(8)} ms/accumulate`,
  );
  return rate;
}

async function main(): Promise<void> {
  const prefer = process.argv.includes('--backend')
    ? (process.argv[process.argv.indexOf('--backend') + 1] as BackendName)
    : undefined;
  const backend = await initBackend(prefer);
  console.log(`accumulate of ${N} float32, ${ITER} iterations, backend ${backend}, node ${process.version}`);

  const base = new Float32Array(N);
  const delta = Float32Array.from({ length: N }, (_, i) => (i % 7) * 0.5);
  const baseline = timeIt('Float32Array add loop (baseline)', () => {
    for (let i = 0; i < N; i++) base[i]! += delta[i]!;
  });

  const interp = new Interpreter();
  let acc: Value = structValue([['sum', tf.zeros([N])]]);
  const update = structValue([['delta', tf.tensor1d(delta)]]);
  const ir = timeIt('interpreter accumulate', () => {
    const next = interp.run(
      accumulate,
      structValue([
        ['acc', acc],
        ['update', update],
      ]),
      { round: 1, label: 'accumulate' },
    );
    disposeValue(acc);
    acc = next;
  });
  // Keep the work observable so that neither loop can be optimised away.
  const check = (tf.tidy(
    () =>
      (acc as unknown as { fields: { value: tf.Tensor }[] }).fields[0]!.value.slice([1], [1]).dataSync()[0],
  ) ?? 0) as number;
  console.log(`checksum interpreter ${check} baseline ${base[1]}`);
  console.log(`ratio interpreter/baseline: ${(ir / baseline).toFixed(2)}x`);
  disposeValue(acc);
  disposeValue(update);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
