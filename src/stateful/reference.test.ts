import * as tf from '@tensorflow/tfjs';
import { readings, secureCountProgram, sumProgram } from '../../test/support/stateful-programs';
import { runProgram, type StepLog } from './reference';

// Device sums: a 1+2+3 = 6, b 4, c 0.5+0.5 = 1.
const devices = new Map([
  ['a', readings(1, 2, 3)],
  ['b', readings(4)],
  ['c', readings(0.5, 0.5)],
]);

// Steps: 0 data, 1 local_sum, 2 aggregate total, 3 double, 4 broadcast, 5 scale, 6 struct, 7 select,
// 8 aggregate scaled_total, 9 dispose.
describe('runProgram', () => {
  it('runs the sum program as computed by hand, over any number of partials', async () => {
    const before = tf.memory().numTensors;
    const steps: StepLog[] = [];
    // total = 6 + 4 + 1 = 11; doubled = 22; scaled_total = 22 x (6 + 4 + 1) = 242.
    const result = await runProgram(sumProgram(), devices, { onStep: (s) => steps.push(s) });
    expect(result.outputs).toEqual({ total: 11, doubled: 22, scaled_total: 242 });
    expect(result.failed).toBeUndefined();
    expect(result.cohort).toEqual(['a', 'b', 'c']);
    expect(steps.map((s) => s.op)).toEqual([
      'client_data',
      'client_call',
      'aggregate',
      'server_call',
      'broadcast',
      'client_call',
      'client_struct',
      'client_select',
      'aggregate',
      'dispose',
    ]);
    expect(result.steps).toEqual(steps);
    expect(steps.filter((s) => s.contributed !== undefined).map((s) => s.contributed)).toEqual([3, 3]);
    for (const partials of [1, 3, 5]) {
      expect((await runProgram(sumProgram(), devices, { partials })).outputs).toEqual(result.outputs);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('recruits at most target_clients devices', async () => {
    const result = await runProgram(sumProgram(2, 2), devices, { serverValues: true });
    // a and b: total 10, doubled 20, scaled 20 x 10 = 200.
    expect(result.cohort).toEqual(['a', 'b']);
    expect(result.outputs).toEqual({ total: 10, doubled: 20, scaled_total: 200 });
    expect(result.values).toEqual({ total: 10, doubled: 20, scaled_total: 200 });
  });

  it('continues without a device that lost its state while every later minimum can be met', async () => {
    const lost = await runProgram(sumProgram(), devices, { loseStateAfterStep: new Map([['c', 0]]) });
    // c fails at step 1 (its data, h0, is gone): the run is the run over a and b.
    expect(lost.failed).toBeUndefined();
    expect(lost.failedSessions).toEqual([
      { device: 'c', step: 1, reason: expect.stringContaining('HANDLE_UNKNOWN') },
    ]);
    expect(lost.steps[1]).toMatchObject({ live: 2, failedSessions: [{ device: 'c' }] });
    const remaining = await runProgram(sumProgram(), new Map([...devices].filter(([id]) => id !== 'c')));
    expect(lost.outputs).toEqual(remaining.outputs);
    expect(lost.outputs).toEqual({ total: 10, doubled: 20, scaled_total: 200 });
  });

  it('keeps a lost device in the aggregates it contributed to before its next request named a lost handle', async () => {
    const result = await runProgram(sumProgram(), devices, { loseStateAfterStep: new Map([['c', 2]]) });
    // c counts in total (11, doubled 22); its broadcast arrives (create_value names no old handle), then scale
    // names its lost sum at step 5: scaled_total = 22 x (6 + 4) = 220.
    expect(result.failedSessions).toMatchObject([{ device: 'c', step: 5 }]);
    expect(result.outputs).toEqual({ total: 11, doubled: 22, scaled_total: 220 });
    expect(result.steps.map((s) => s.contributed).filter((c) => c !== undefined)).toEqual([3, 2]);
  });

  it('fails the program, releasing no output, when too few devices are left for a later aggregate', async () => {
    const before = tf.memory().numTensors;
    const result = await runProgram(sumProgram(), devices, {
      loseStateAfterStep: new Map([
        ['b', 2],
        ['c', 2],
      ]),
    });
    expect(result.outputs).toEqual({});
    expect(result.failed).toEqual({
      step: 5,
      reason: '1 devices are live, fewer than the min_clients (2) of step 8 (aggregate scaled_total)',
    });
    expect(result.steps).toHaveLength(6);
    expect(result.failedSessions.map((f) => f.device)).toEqual(['b', 'c']);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('fails a program whose cohort is smaller than its minimum before any step', async () => {
    const result = await runProgram(sumProgram(3), new Map([...devices].slice(0, 2)));
    expect(result.failed).toEqual({
      step: 0,
      reason: 'the cohort has 2 devices, fewer than its min_clients (3)',
    });
    expect(result.steps).toEqual([]);
  });
});

// The secure-count program: steps 0 data, 1 count c = <n, high> (int32), 2 secure_sum total, 3 fraction,
// 4 low, 5 aggregate low_total, 6 dispose. Counts: a <3, 1>, b <1, 1>, c <2, 0>.
describe('runProgram: secure sums', () => {
  it.each([
    ['bitwidth 8', { bitwidth: 8 }, { n: 6, high: 2 }],
    ['max_input 3', { maxInput: 3 }, { n: 6, high: 2 }],
    // Each value modulo 4, then the sum modulo 4: n (3 + 1 + 2) % 4 = 2.
    ['modulus 4', { modulus: 4 }, { n: 2, high: 2 }],
  ])('%s: the sum with that semantics, the tensors all freed', async (_, o, total) => {
    const before = tf.memory().numTensors;
    const result = await runProgram(secureCountProgram(2, 3, o), devices);
    expect(result.failed).toBeUndefined();
    expect((result.outputs as { total: unknown }).total).toEqual(total);
    expect(result.steps.filter((s) => s.contributed !== undefined).map((s) => s.op)).toEqual([
      'secure_sum',
      'aggregate',
    ]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a device out of range fails its session; below the minimum the program fails', async () => {
    // bitwidth 1: values in [0, 1]; a has n = 3 and c n = 2.
    const one = await runProgram(secureCountProgram(2, 3, { bitwidth: 1 }), devices);
    expect(one.failedSessions.map((f) => [f.device, f.step, f.reason.split(':')[0]])).toEqual([
      ['a', 2, 'SECURE_SUM_OUT_OF_RANGE'],
      ['c', 2, 'SECURE_SUM_OUT_OF_RANGE'],
    ]);
    expect(one.failed).toEqual({
      reason: 'step 2 (secure_sum total): 1 devices contributed, fewer than its min_clients (2)',
      step: 2,
    });
    expect(one.outputs).toEqual({});
  });
});
