import * as tf from '@tensorflow/tfjs';
import { MemoryExampleStore } from '../client/example-store';
import { decodeBundle, encodeBundle } from '../codec';
import { tensorType } from '../compute/types';
import { disposeValue, type Value } from '../compute/value';
import { valueToJson } from '../compute/value-json';
import { readings, secureCountProgram, sumProgram } from '../../test/support/stateful-programs';
import { clientProgramOf } from './client-program';
import { ClientExecutor } from './executor';
import type { ExecutorAnswer, ExecutorRequest } from './requests';
import { contributionType } from './requests';

const F32 = tensorType('float32', []);

function executor(values: number[] = [1, 2, 3]): ClientExecutor {
  return new ClientExecutor(clientProgramOf(sumProgram()), new MemoryExampleStore(readings(...values)));
}

function scalarBundle(x: number): Uint8Array {
  const t = tf.scalar(x);
  try {
    return encodeBundle(t, F32);
  } finally {
    t.dispose();
  }
}

/** The JSON of a contributed bundle, decoded as float32. */
function contributed(answer: ExecutorAnswer): unknown {
  if (!answer.ok || answer.kind !== 'contributed')
    throw new Error(`not a contribution: ${JSON.stringify(answer)}`);
  const v: Value = decodeBundle(answer.bundle, contributionType(F32));
  try {
    // A contribution travels as an upload <U, <>, <>, <>>: U is its first field.
    return (valueToJson(v) as unknown[])[0];
  } finally {
    disposeValue(v);
  }
}

async function all(e: ClientExecutor, requests: ExecutorRequest[]): Promise<ExecutorAnswer[]> {
  const answers: ExecutorAnswer[] = [];
  for (const r of requests) answers.push(await e.execute(r));
  return answers;
}

// A function: the tensors of a bundle are made once the test's backend is set.
const setup = (): ExecutorRequest[] => [
  { kind: 'create_data', handle: 'h0', collection: 'readings' },
  { kind: 'create_call', handle: 'h1', fn: 'local_sum', args: ['h0'] },
  { kind: 'create_value', handle: 'h2', type: F32, bundle: scalarBundle(22) },
  { kind: 'create_call', handle: 'h3', fn: 'scale', args: ['h1', 'h2'] },
];

describe('ClientExecutor', () => {
  it('creates data, calls, values, structs and selections, and contributes them', async () => {
    const e = executor();
    const answers = await all(e, [
      ...setup(),
      { kind: 'create_struct', handle: 'h4', fields: [{ name: 't', handle: 'h3' }, { handle: 'h1' }] },
      { kind: 'create_selection', handle: 'h5', source: 'h4', field: 't' },
      { kind: 'create_selection', handle: 'h6', source: 'h4', field: 1 },
    ]);
    expect(answers.map((a) => a.ok)).toEqual([true, true, true, true, true, true, true]);
    expect(answers[0]).toMatchObject({ kind: 'created', handle: 'h0', type: { kind: 'sequence' } });
    expect(answers[1]).toEqual({ ok: true, kind: 'created', handle: 'h1', type: F32 });
    expect(answers[4]).toMatchObject({
      type: { kind: 'struct', fields: [{ name: 't', type: F32 }, { type: F32 }] },
    });
    expect(contributed(await e.execute({ kind: 'contribute', aggregation: 'a', handle: 'h1' }))).toBe(6);
    expect(contributed(await e.execute({ kind: 'contribute', aggregation: 'a', handle: 'h3' }))).toBe(132);
    expect(contributed(await e.execute({ kind: 'contribute', aggregation: 'a', handle: 'h5' }))).toBe(132);
    expect(contributed(await e.execute({ kind: 'contribute', aggregation: 'a', handle: 'h6' }))).toBe(6);
    expect(e.handles()).toEqual(['h0', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6']);
    e.reset();
  });

  it('answers HANDLE_UNKNOWN for a handle it does not hold, in every request that names one', async () => {
    const e = executor();
    const answers = await all(e, [
      { kind: 'create_call', handle: 'h1', fn: 'local_sum', args: ['h0'] },
      { kind: 'create_struct', handle: 'h2', fields: [{ handle: 'nope' }] },
      { kind: 'create_selection', handle: 'h3', source: 'nope', field: 0 },
      { kind: 'contribute', aggregation: 'a', handle: 'nope' },
      { kind: 'dispose', handles: ['nope'] },
    ]);
    for (const a of answers) expect(a).toMatchObject({ ok: false, code: 'HANDLE_UNKNOWN' });
    expect(e.handles()).toEqual([]);
  });

  it('refuses a handle created twice, an unknown computation or collection, a selection of a non-struct', async () => {
    const e = executor();
    const answers = await all(e, [
      ...setup(),
      { kind: 'create_data', handle: 'h0', collection: 'readings' },
      { kind: 'create_value', handle: 'h2', type: F32, bundle: scalarBundle(1) },
      { kind: 'create_call', handle: 'h9', fn: 'double', args: ['h1'] },
      { kind: 'create_data', handle: 'h9', collection: 'elsewhere' },
      { kind: 'create_selection', handle: 'h9', source: 'h1', field: 0 },
    ]);
    expect(answers.slice(4).map((a) => (a.ok ? 'ok' : a.code))).toEqual(Array(5).fill('REQUEST_INVALID'));
    // The server's `double` never reaches a device: the client program holds only client_call computations.
    expect(answers[6]).toMatchObject({ message: expect.stringContaining('no computation "double"') });
    expect(e.handles()).toEqual(['h0', 'h1', 'h2', 'h3']);
    e.reset();
  });

  it('disposes handles all or none, and forgets everything on reset', async () => {
    const e = executor();
    await all(e, setup());
    expect(await e.execute({ kind: 'dispose', handles: ['h3', 'h9'] })).toMatchObject({
      code: 'HANDLE_UNKNOWN',
    });
    expect(e.handles()).toEqual(['h0', 'h1', 'h2', 'h3']);
    expect(await e.execute({ kind: 'dispose', handles: ['h0', 'h3'] })).toEqual({
      ok: true,
      kind: 'disposed',
    });
    expect(e.handles()).toEqual(['h1', 'h2']);
    e.reset();
    expect(e.handles()).toEqual([]);
    expect(await e.execute({ kind: 'contribute', aggregation: 'a', handle: 'h1' })).toMatchObject({
      ok: false,
      code: 'HANDLE_UNKNOWN',
    });
  });

  it('refuses a non-finite contribution as the upload route refuses a non-finite upload', async () => {
    const e = executor();
    const answers = await all(e, [
      { kind: 'create_data', handle: 'h0', collection: 'readings' },
      { kind: 'create_call', handle: 'h1', fn: 'local_sum', args: ['h0'] },
      { kind: 'create_value', handle: 'h2', type: F32, bundle: scalarBundle(3e38) },
      { kind: 'create_call', handle: 'h3', fn: 'scale', args: ['h1', 'h2'] },
      { kind: 'contribute', aggregation: 'a', handle: 'h3' },
    ]);
    expect(answers[4]).toMatchObject({ ok: false, code: 'BUNDLE_NOT_FINITE' });
    e.reset();
  });

  it('answers an evaluation failure with its code', async () => {
    const e = executor();
    const answers = await all(e, [
      { kind: 'create_value', handle: 'h0', type: F32, bundle: scalarBundle(1) },
      // local_sum takes a sequence; the interpreter's conformance refuses a tensor.
      { kind: 'create_call', handle: 'h1', fn: 'local_sum', args: ['h0'] },
    ]);
    expect(answers[1]).toMatchObject({ ok: false, code: 'EVAL_ERROR' });
    expect(e.handles()).toEqual(['h0']);
    e.reset();
  });

  it('leaks no tensor over a long session', async () => {
    const e = executor();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 40; i++) {
      const h = (k: number) => `h${i}_${k}`;
      const answers = await all(e, [
        { kind: 'create_data', handle: h(0), collection: 'readings' },
        { kind: 'create_call', handle: h(1), fn: 'local_sum', args: [h(0)] },
        { kind: 'create_value', handle: h(2), type: F32, bundle: scalarBundle(i) },
        { kind: 'create_call', handle: h(3), fn: 'scale', args: [h(1), h(2)] },
        { kind: 'create_struct', handle: h(4), fields: [{ name: 't', handle: h(3) }, { handle: h(1) }] },
        { kind: 'create_selection', handle: h(5), source: h(4), field: 't' },
        { kind: 'contribute', aggregation: 'a', handle: h(5) },
        { kind: 'dispose', handles: [h(0), h(1), h(2), h(3), h(4), h(5)] },
      ]);
      expect(answers.every((a) => a.ok)).toBe(true);
      expect(contributed(answers[6]!)).toBe(6 * i);
    }
    expect(e.handles()).toEqual([]);
    expect(tf.memory().numTensors).toBe(before);
    await all(e, setup());
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    e.reset();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('ClientExecutor: contributions to a secure sum', () => {
  // The secure-count program's devices hold c = <n, high> (int32): 4 readings, 2 of them above 2.
  function counting(): ClientExecutor {
    return new ClientExecutor(
      clientProgramOf(secureCountProgram()),
      new MemoryExampleStore(readings(1, 3, 5, 2)),
    );
  }
  const counted: ExecutorRequest[] = [
    { kind: 'create_data', handle: 'h0', collection: 'readings' },
    { kind: 'create_call', handle: 'h1', fn: 'count', args: ['h0'] },
  ];

  it.each([
    ['bitwidth', 1],
    ['max_input', 2],
    ['modulus', 3],
  ] as const)('a %s sum: the value travels as that secure sum (V%i) with U empty', async (kind, slot) => {
    const e = counting();
    await all(e, counted);
    const secure_sum = { kind, parameter: 7 };
    const answer = await e.execute({ kind: 'contribute', aggregation: 'total', handle: 'h1', secure_sum });
    if (!answer.ok || answer.kind !== 'contributed') throw new Error(JSON.stringify(answer));
    const counts = answer.type.kind === 'struct' ? answer.type.fields[slot]!.type : undefined;
    expect(answer.type).toEqual(contributionType(counts!, secure_sum));
    const v = decodeBundle(answer.bundle, answer.type);
    try {
      const json = valueToJson(v) as unknown[];
      expect(json[slot]).toEqual({ n: 4, high: 2 });
      expect(json.filter((_, k) => k !== slot)).toEqual([[], [], []]);
    } finally {
      disposeValue(v);
    }
    e.reset();
  });

  it('refuses a value outside its kind range (SECURE_SUM_OUT_OF_RANGE), and a float value', async () => {
    const e = counting();
    await all(e, counted);
    // bitwidth 2: values in [0, 3]; n is 4.
    const out = await e.execute({
      kind: 'contribute',
      aggregation: 'total',
      handle: 'h1',
      secure_sum: { kind: 'bitwidth', parameter: 2 },
    });
    expect(out).toMatchObject({ ok: false, code: 'SECURE_SUM_OUT_OF_RANGE' });
    expect(
      await e.execute({
        kind: 'contribute',
        aggregation: 'total',
        handle: 'h1',
        secure_sum: { kind: 'max_input', parameter: 3 },
      }),
    ).toMatchObject({ ok: false, code: 'SECURE_SUM_OUT_OF_RANGE' });
    // A hostile server asking for a secure sum of the device's floats.
    await e.execute({ kind: 'create_call', handle: 'h2', fn: 'low', args: ['h1'] });
    expect(
      await e.execute({
        kind: 'contribute',
        aggregation: 'low_total',
        handle: 'h2',
        secure_sum: { kind: 'modulus', parameter: 5 },
      }),
    ).toMatchObject({ ok: false, code: 'REQUEST_INVALID' });
    e.reset();
  });
});
