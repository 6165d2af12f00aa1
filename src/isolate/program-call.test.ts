import * as tf from '@tensorflow/tfjs';
import sumPlan from '../../test/fixtures/sum-plan.json';
import { named } from '../../test/support/isolation-plans';
import { readings, sumProgram } from '../../test/support/stateful-programs';
import { decodeBundle, encodeBundle, writeBundle } from '../codec';
import { tensorType, type TffType } from '../compute/types';
import { disposeValue, structValue, type Value } from '../compute/value';
import { valueToJson, type JsonValue } from '../compute/value-json';
import { loadConfig, type IsolateConfig } from '../config';
import { digitsClientExamples, loadDigits, trainTestSplit } from '../data/digits';
import type { AppError } from '../errors';
import { createLogger } from '../log/logger';
import { checkProgram, type CheckedProgram } from '../stateful/check';
import { callArgument } from '../stateful/executor';
import { buildTrainThenEvaluate } from '../stateful/library/train-then-evaluate';
import type { Program } from '../stateful/program';
import { runProgram } from '../stateful/reference';
import type { ProgramEvaluator, ProgramRef } from './contract';
import { IsolatePool } from './isolate-pool';
import { LocalEvaluator } from './local-evaluator';
import { programCallArgument, type TypedBundle } from './program-argument';

// One pool of real worker-thread isolates from dist/ (`npm test` builds first) for the whole file, with test
// fault injection on (programs named `fault-<kind>-call`) and small limits so that faults come quickly.
const base = loadConfig({});
const config: IsolateConfig = {
  poolSize: 2,
  // Generous: a good call after a fault runs on a fresh isolate, on a machine that may be loaded.
  timeoutMs: 8_000,
  maxHeapMb: 64,
  maxWasmMb: 64,
  testFaults: true,
};
const pool = new IsolatePool({
  config,
  limits: base.limits,
  log: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
});
const local = new LocalEvaluator(base.limits);
afterAll(() => Promise.all([pool.close(), local.close()]));

const evaluators: [string, ProgramEvaluator][] = [
  ['IsolatePool', pool],
  ['LocalEvaluator', local],
];

let seq = 0;
const ref = (document: Program | Record<string, unknown>): ProgramRef => ({ id: `prog${++seq}`, document });

/** A value of `type` from its JSON rendering (`valueToJson`): what the reference runner's values give. */
function fromJson(json: JsonValue, type: TffType): Value {
  if (type.kind === 'struct') {
    // A struct whose fields are all named renders as an object (fields in order), any other as an array.
    const items = Array.isArray(json) ? json : Object.values(json as Record<string, JsonValue>);
    return structValue(type.fields.map((f, i) => [f.name, fromJson(items[i]!, f.type)] as const));
  }
  if (type.kind === 'sequence') throw new Error('a server value is never a sequence');
  return tf.tensor(json as number[], undefined, type.dtype);
}

/** The bundle of a reference value, encoded with its static type as the server keeps it. */
function bundleOf(json: JsonValue, type: TffType): Uint8Array {
  const v = fromJson(json, type);
  try {
    return encodeBundle(v, type);
  } finally {
    disposeValue(v);
  }
}

/** An f32 scalar's bundle (the sum program's values). */
const scalar = (x: number): Uint8Array =>
  writeBundle([{ name: 'value', dtype: 'float32', shape: [], data: Float32Array.of(x) }]);

/** How an evaluator's call failed, as the API would answer it. */
function failure(e: ProgramEvaluator, program: ProgramRef, fn: string, arg?: Uint8Array) {
  return e.callProgram(program, { fn, round: 1, ...(arg ? { arg } : {}) }).then(
    () => undefined,
    (err: AppError) => err.toJSON(),
  );
}

/** The train-then-evaluate program, small: every server computation runs at least once, quickly. */
function smallTrainThenEvaluate() {
  const { train, test } = trainTestSplit(loadDigits(), 0.2, 7);
  const part = (data: typeof train, from: number, n: number) =>
    digitsClientExamples(
      data,
      Array.from({ length: n }, (_, i) => from + i),
    );
  const program = buildTrainThenEvaluate({
    layers: [64, 8, 10],
    rounds: 2,
    epochs: 1,
    batchSize: 8,
    testBatchSize: 8,
    seed: 3,
    targetClients: 2,
    minClients: 2,
  });
  const devices = new Map(
    [0, 1].map((d) => [
      `device-${d}`,
      { digits: part(train, d * 24, 24), 'digits-test': part(test, d * 8, 8) },
    ]),
  );
  return { program, devices };
}

describe.each([
  ['train-then-evaluate', smallTrainThenEvaluate(), ['initialize', 'apply', 'apply', 'train_metrics']],
  [
    'the sum program',
    {
      program: sumProgram(),
      devices: new Map([
        ['a', readings(1, 2, 3)],
        ['b', readings(4)],
        ['c', readings(0.5)],
      ]),
    },
    ['double'],
  ],
])('the server computations of %s', (_, { program, devices }, called) => {
  const doc = ref(program);
  const calls = program.steps.flatMap((s, index) => (s.op === 'server_call' ? [{ ...s, index }] : []));
  let checked: CheckedProgram;
  let values: Readonly<Record<string, JsonValue>>;

  beforeAll(async () => {
    checked = checkProgram(program, base.limits);
    const run = await runProgram(program, devices, { serverValues: true, limits: base.limits });
    expect(run.failed).toBeUndefined();
    values = run.values!;
  });

  /** The bundles of the server values `names`, with their static types. */
  const typed = (names: readonly string[]) =>
    names.map((n) => ({ bytes: bundleOf(values[n]!, checked.types.get(n)!), type: checked.types.get(n)! }));

  test.each(evaluators)('%s gives the bytes of the reference runner for every server_call', async (_, e) => {
    expect(calls.map((c) => c.fn)).toEqual(called);
    const before = tf.memory().numTensors;
    for (const { fn, args = [], result, index } of calls) {
      const arg = programCallArgument(checked.signatures[fn]!.parameter, typed(args));
      const bytes = await e.callProgram(doc, { fn, round: index, ...(arg ? { arg } : {}) });
      const expected = bundleOf(values[result]!, checked.types.get(result)!);
      expect({ fn, bytes: Buffer.from(bytes) }).toEqual({ fn, bytes: Buffer.from(expected) });
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test('the argument built from bundles is the bundle of the values the reference runner passes', () => {
    for (const { fn, args = [] } of calls) {
      const parameter = checked.signatures[fn]!.parameter;
      const vs = args.map((n) => fromJson(values[n]!, checked.types.get(n)!));
      try {
        const direct = parameter && encodeBundle(callArgument(vs)!, parameter);
        const built = programCallArgument(parameter, typed(args));
        expect(built && Buffer.from(built)).toEqual(direct && Buffer.from(direct));
      } finally {
        vs.forEach(disposeValue);
      }
    }
  });
});

test('a random op draws the same with the same round, and otherwise differently', async () => {
  const doc = ref(smallTrainThenEvaluate().program);
  const init = (round: number) => pool.callProgram(doc, { fn: 'initialize', round });
  const [a, b, c] = await Promise.all([init(0), init(0), init(1)]);
  expect(Buffer.from(a)).toEqual(Buffer.from(b));
  expect(Buffer.from(c)).not.toEqual(Buffer.from(a));
});

test('args that do not fill the parameter are REQUEST_INVALID', () => {
  const f32 = tensorType('float32', []);
  const pair: TffType = { kind: 'struct', fields: [{ type: f32 }, { type: f32 }] };
  const one = { bytes: scalar(1), type: f32 };
  for (const [parameter, args] of [
    [undefined, [one]],
    [f32, []],
    [pair, [one]],
    [pair, [one, one, one]],
  ] as const satisfies readonly (readonly [TffType | undefined, readonly TypedBundle[]])[]) {
    expect(() => programCallArgument(parameter, args)).toThrow(
      expect.objectContaining({ code: 'REQUEST_INVALID' }) as Error,
    );
  }
  expect(programCallArgument(undefined, [])).toBeUndefined();
});

describe('refusals', () => {
  const program = sumProgram();
  const doc = ref(program);

  test.each(evaluators)('%s: the sum program doubles its total', async (_, e) => {
    const bytes = await e.callProgram(doc, { fn: 'double', arg: scalar(5.5), round: 3 });
    const v = decodeBundle(bytes, { kind: 'tensor', dtype: 'float32', shape: [] });
    expect(valueToJson(v)).toBe(11);
    disposeValue(v);
  });

  test('an unknown computation, or an argument that does not fit, is REQUEST_INVALID from both', async () => {
    // `add_batch` is one of the program's functions, not a computation; `toString` is on every object.
    for (const [fn, arg] of [
      ['nope', undefined],
      ['add_batch', scalar(1)],
      ['toString', undefined],
      ['zero', scalar(1)],
      ['double', undefined],
    ] as const) {
      const answer = await failure(local, doc, fn, arg);
      expect(answer).toMatchObject({
        error: { code: 'REQUEST_INVALID', message: expect.stringContaining(fn) },
      });
      expect(await failure(pool, doc, fn, arg)).toEqual(answer);
    }
  });

  test('argument bytes that do not decode against the parameter are the decode error', async () => {
    const int = writeBundle([{ name: 'value', dtype: 'int32', shape: [], data: Int32Array.of(1) }]);
    for (const [arg, code] of [
      [Uint8Array.of(9, 9, 9), 'BUNDLE_MALFORMED'],
      [int, 'BUNDLE_TYPE_MISMATCH'],
    ] as const) {
      const answer = await failure(local, doc, 'double', arg);
      expect(answer).toMatchObject({ error: { code } });
      expect(await failure(pool, doc, 'double', arg)).toEqual(answer);
    }
  });

  test('a non-finite result is EVAL_ERROR naming its path, from both', async () => {
    // 2 x 3e38 overflows float32 to +Infinity.
    const answer = await failure(local, doc, 'double', scalar(3e38));
    expect(answer).toMatchObject({
      error: { code: 'EVAL_ERROR', message: 'double gave a non-finite value at result[0]' },
    });
    expect(await failure(pool, doc, 'double', scalar(3e38))).toEqual(answer);
  });

  test('a program that does not pass checkProgram is refused with its error', async () => {
    const broken = ref({ ...program, cohort: { ...program.cohort, min_clients: 1 } });
    const answer = await failure(local, broken, 'double', scalar(1));
    expect(answer).toMatchObject({ error: { code: 'PROGRAM_PRIVACY_VIOLATION' } });
    expect(await failure(pool, broken, 'double', scalar(1))).toEqual(answer);
  });

  test('a plan and a program of the same id are kept apart', async () => {
    const id = `same${++seq}`;
    for (let i = 0; i < 2; i++) {
      await expect(pool.initialize({ id, document: sumPlan })).resolves.toBeInstanceOf(Uint8Array);
      const bytes = await pool.callProgram(
        { id, document: program },
        { fn: 'double', arg: scalar(2), round: 3 },
      );
      expect(Buffer.from(bytes)).toEqual(Buffer.from(scalar(4)));
    }
  });
});

describe.each([
  ['hang', new RegExp(`took longer than ${config.timeoutMs} ms`)],
  ['oom', /heap memory/],
  ['abort', /backend faulted/],
])('a program computation that faults its isolate (%s)', (kind, reason) => {
  test('is EVAL_FAULT, and the next call runs on a fresh isolate', async () => {
    const bad = ref(named(sumProgram() as unknown as Record<string, unknown>, `fault-${kind}-call`));
    const failed = pool.callProgram(bad, { fn: 'double', arg: scalar(1), round: 3 });
    // A good call queued behind it is untouched.
    const good = pool.callProgram(ref(sumProgram()), { fn: 'double', arg: scalar(1.25), round: 3 });
    await expect(failed).rejects.toMatchObject({
      code: 'EVAL_FAULT',
      message: expect.stringMatching(new RegExp(`^call double: .*${reason.source}`)),
    });
    expect(Buffer.from(await good)).toEqual(Buffer.from(scalar(2.5)));
  });
});

test('the isolates hold no tensors once the calls are done', async () => {
  await pool.callProgram(ref(sumProgram()), { fn: 'double', arg: scalar(1), round: 3 });
  const counts = await pool.tensorCounts();
  expect(counts.length).toBeGreaterThan(0);
  expect(counts).toEqual(counts.map(() => 0));
});
