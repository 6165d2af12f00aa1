import { computation, STATS, varianceProgram } from '../../test/support/programs';
import { DEFAULT_LIMITS } from '../compute/limits';
import { formatType } from '../compute/types';
import { AppError, type ErrorCode } from '../errors';
import { f32, named } from '../plans/common';
import { secureCountProgram } from '../../test/support/stateful-programs';
import { checkProgram } from './check';
import { buildPersonalised } from './library/personalised';
import { buildTrainThenEvaluate } from './library/train-then-evaluate';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- program JSON is edited freely to break it
type Json = any;

/** The AppError checkProgram throws for `json`. */
function refusal(json: unknown): AppError {
  try {
    checkProgram(json);
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
  throw new Error('the program was accepted');
}

function expectRefused(json: unknown, code: ErrorCode, path: string, message?: RegExp): AppError {
  const e = refusal(json);
  expect(e.code).toBe(code);
  const at = e.details.filter((d) => d.path === path);
  expect(at.map((d) => d.path)).toEqual(expect.arrayContaining([path]));
  if (message)
    expect(at.map((d) => d.message)).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
  return e;
}

describe('checkProgram accepts a valid program', () => {
  test('every value placed and typed, signatures, client computations and aggregations', () => {
    const checked = checkProgram(varianceProgram());
    expect(Object.fromEntries(checked.placements)).toEqual({
      values: 'clients',
      stats: 'clients',
      totals: 'server',
      mean: 'server',
      mean_c: 'clients',
      dev: 'clients',
      n: 'clients',
      dev_stats: 'clients',
      variance: 'server',
    });
    const types = Object.fromEntries([...checked.types].map(([k, t]) => [k, formatType(t)]));
    expect(types).toEqual({
      values: 'float32[?]*',
      stats: '<sum=float32,sumsq=float32,count=float32>',
      totals: '<sum=float32,sumsq=float32,count=float32>',
      mean: 'float32',
      mean_c: 'float32',
      dev: 'float32',
      n: 'float32',
      dev_stats: '<sum=float32,count=float32>',
      variance: 'float32',
    });
    expect([...checked.clientComputations].sort()).toEqual(['local_stats', 'sq_dev']);
    expect(checked.aggregations).toEqual([2, 8]);
    expect(formatType(checked.signatures.mean_of!.result)).toBe('float32');
    expect(checked.signatures['function add_batch']).toBeDefined();
  });

  test('a client_select by position, and a computation called by several steps', () => {
    const p: Json = varianceProgram();
    p.steps[6].field = 2;
    p.steps.splice(2, 0, { op: 'client_call', fn: 'local_stats', args: ['values'], result: 'again' });
    p.steps.at(-1).values.push('again');
    const checked = checkProgram(p);
    expect(formatType(checked.types.get('n')!)).toBe('float32');
    expect(checked.placements.get('again')).toBe('clients');
    expect(checked.aggregations).toEqual([3, 9]);
  });
});

describe('checkProgram refuses, with the code and the pointer', () => {
  test('a server_call given a client value (reading a client value directly)', () => {
    const p: Json = varianceProgram();
    p.steps[3].args = ['stats'];
    expectRefused(p, 'PROGRAM_PRIVACY_VIOLATION', '/steps/3/args/0', /"stats" is a client value/);
  });

  test('an output naming a client value', () => {
    const p: Json = varianceProgram();
    p.outputs.leak = 'dev';
    p.steps.at(-1).values = ['values'];
    expectRefused(p, 'PROGRAM_PRIVACY_VIOLATION', '/outputs/leak', /"dev" is a client value/);
  });

  test('the privacy code wins over other problems, and every problem is listed', () => {
    const p: Json = varianceProgram();
    p.steps[3].args = ['stats'];
    p.steps[1].fn = 'no_such';
    const e = expectRefused(p, 'PROGRAM_PRIVACY_VIOLATION', '/steps/1/fn', /unknown computation "no_such"/);
    expect(e.details.map((d) => d.path)).toContain('/steps/3/args/0');
  });

  test('a client_call given a server value without a broadcast', () => {
    const p: Json = varianceProgram();
    p.steps[5].args = ['stats', 'mean'];
    expectRefused(p, 'PROGRAM_PRIVACY_VIOLATION', '/steps/5/args/1', /"mean" is a server value: .*broadcast/);
  });

  test('an aggregate of a server value, a broadcast of a client value', () => {
    const p: Json = varianceProgram();
    p.steps[8].value = 'mean';
    p.steps[4].value = 'stats';
    const e = expectRefused(p, 'PROGRAM_PRIVACY_VIOLATION', '/steps/8/value', /"mean" is a server value/);
    expect(e.details.map((d) => d.path)).toContain('/steps/4/value');
  });

  test("an aggregate whose min_clients is below the cohort's", () => {
    const p: Json = varianceProgram();
    p.steps[2].min_clients = 2;
    expectRefused(
      p,
      'PROGRAM_PRIVACY_VIOLATION',
      '/steps/2/min_clients',
      /less than the cohort's min_clients 3/,
    );
  });

  test('a cohort of min_clients 1', () => {
    const p: Json = varianceProgram();
    p.cohort.min_clients = 1;
    p.steps[2].min_clients = 1;
    expectRefused(p, 'PROGRAM_PRIVACY_VIOLATION', '/cohort/min_clients', /less than 2/);
  });

  test('a cohort whose target is below its minimum; an aggregate that could never be released', () => {
    const p: Json = varianceProgram();
    p.cohort.target_clients = 2;
    const e = expectRefused(p, 'PLAN_TYPE_ERROR', '/cohort/target_clients', /less than min_clients 3/);
    expect(e.details.map((d) => d.path)).toEqual(expect.arrayContaining(['/steps/2/min_clients']));
  });

  test('a broadcast of a sequence', () => {
    // The IR has no op that makes a sequence, so the only sequences are client_data's, at the clients:
    // broadcasting one breaks both the placement rule and the sequence rule, and both are said.
    const p: Json = varianceProgram();
    p.steps[4].value = 'values';
    const e = expectRefused(p, 'PROGRAM_PRIVACY_VIOLATION', '/steps/4/value', /"values" is a client value/);
    expect(e.details).toContainEqual({
      path: '/steps/4/value',
      message: 'a broadcast value float32[?]* must not contain a sequence',
    });
  });

  test('an aggregate of a sequence (client_data results are sequences)', () => {
    const p: Json = varianceProgram();
    p.steps[2].value = 'values';
    expectRefused(p, 'PLAN_TYPE_ERROR', '/steps/2/value', /float32\[\?\]\* must not contain a sequence/);
  });

  test('a use after dispose', () => {
    const p: Json = varianceProgram();
    p.steps.push({ op: 'client_call', fn: 'local_stats', args: ['values'], result: 'late' });
    expectRefused(p, 'PLAN_TYPE_ERROR', '/steps/10/args/0', /"values" was disposed by step 9/);
  });

  test('a use before definition', () => {
    const p: Json = varianceProgram();
    p.steps[1].args = ['later'];
    expectRefused(p, 'PLAN_TYPE_ERROR', '/steps/1/args/0', /"later" is not defined by an earlier step/);
  });

  test('a redefinition', () => {
    const p: Json = varianceProgram();
    p.steps[6].result = 'dev';
    expectRefused(p, 'PLAN_TYPE_ERROR', '/steps/6/result', /"dev" is already defined by step 5/);
  });

  test('an unknown computation, an unknown collection', () => {
    const p: Json = varianceProgram();
    p.steps[8].merge = 'nope';
    p.steps[0].collection = 'elsewhere';
    const e = expectRefused(p, 'PLAN_TYPE_ERROR', '/steps/8/merge', /unknown computation "nope"/);
    expect(e.details.map((d) => d.path)).toContain('/steps/0/collection');
  });

  test('an unused computation', () => {
    const p: Json = varianceProgram();
    p.computations.spare = computation('spare', undefined, (b) => b.scalar(1));
    expectRefused(p, 'PLAN_TYPE_ERROR', '/computations/spare', /not called by any step/);
  });

  test('a call with the wrong number of args, or an arg of the wrong type', () => {
    const arity: Json = varianceProgram();
    arity.steps[5].args = ['stats'];
    expectRefused(arity, 'PLAN_TYPE_ERROR', '/steps/5/args/0', /sq_dev.*does not accept/);
    const none: Json = varianceProgram();
    delete none.steps[3].args;
    expectRefused(none, 'PLAN_TYPE_ERROR', '/steps/3/fn', /takes .* but the step gives no args/);
    const three: Json = varianceProgram();
    three.steps[5].args = ['stats', 'mean_c', 'mean_c'];
    expectRefused(three, 'PLAN_TYPE_ERROR', '/steps/5/args', /not a struct of the step's 3 args/);
    const type: Json = varianceProgram();
    type.steps[5].args = ['mean_c', 'mean_c'];
    expectRefused(type, 'PLAN_TYPE_ERROR', '/steps/5/args/0', /parameter field 0 does not accept float32/);
  });

  test("aggregation computations that do not chain (accumulate's update is not the value)", () => {
    const p: Json = varianceProgram();
    p.steps[8].accumulate = 'accumulate';
    expectRefused(
      p,
      'PLAN_TYPE_ERROR',
      '/steps/8/accumulate',
      /accumulate "accumulate": the first parameter/,
    );
  });

  test('client_select of a missing field, client_struct with a field name twice', () => {
    const select: Json = varianceProgram();
    select.steps[6].field = 'mean';
    expectRefused(select, 'PLAN_TYPE_ERROR', '/steps/6/field', /has no field "mean"/);
    const struct: Json = varianceProgram();
    struct.steps[7].fields[1].name = 'sum';
    expectRefused(struct, 'PLAN_TYPE_ERROR', '/steps/7/fields/1', /field name "sum" is used twice/);
  });

  test('a client_call computation that uses random_normal', () => {
    const p: Json = varianceProgram();
    p.computations.sq_dev = computation('sq_dev', named({ stats: STATS, mean: f32() }), (b, p2) =>
      b.add(b.field(p2, 'mean'), b.reduceSum(b.randomNormal([2], { seed: 1 }))),
    );
    expectRefused(
      p,
      'PLAN_TYPE_ERROR',
      '/computations/sq_dev',
      /runs on devices, so it may not use the server-only/,
    );
  });

  test('schema errors: unknown properties, a wrong format, a step of no kind', () => {
    const p: Json = varianceProgram();
    p.colour = 'blue';
    p.format = 'roundhouse.plan/v1';
    p.steps[4] = { op: 'teleport', value: 'mean', result: 'x' };
    p.cohort.min_clients = 0;
    const e = expectRefused(p, 'PLAN_SCHEMA_INVALID', '/format', /must be "roundhouse.program\/v1"/);
    expect(e.details.map((d) => d.path)).toEqual(
      expect.arrayContaining(['/', '/steps/4/op', '/cohort/min_clients']),
    );
  });

  test('a program over the node limit, before the schema runs', () => {
    const limits = { ...DEFAULT_LIMITS, maxNodesPerComputation: 2 };
    let thrown: unknown;
    try {
      checkProgram(varianceProgram(), limits);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(AppError);
    expect((thrown as AppError).code).toBe('PLAN_LIMIT_EXCEEDED');
    expect((thrown as AppError).message).toMatch(/^the program has too many nodes/);
    expect((thrown as AppError).details[0]!.path).toMatch(/^\/computations\/\w+\/nodes$/);
  });

  test('timeouts outside the server bounds', () => {
    const p: Json = varianceProgram();
    p.steps[8].deadline_s = 1e9;
    expectRefused(p, 'PLAN_OUT_OF_BOUNDS', '/steps/8/deadline_s', /SCHEDULE_MAX_SECONDS/);
  });
});

describe('the cost model on program computations', () => {
  function refusedWith(limits: typeof DEFAULT_LIMITS): AppError {
    try {
      checkProgram(varianceProgram(), limits);
    } catch (e) {
      if (e instanceof AppError) return e;
      throw e;
    }
    throw new Error('the program was accepted');
  }

  test('the library programs fit the default limits', () => {
    expect(() => checkProgram(buildTrainThenEvaluate({ rounds: 3 }))).not.toThrow();
    expect(() => checkProgram(buildPersonalised({ rounds: 3 }))).not.toThrow();
  });

  test('a device computation over the client FLOP limit is refused at its costliest node', () => {
    const e = refusedWith({ ...DEFAULT_LIMITS, maxClientFlops: 10 });
    expect(e.code).toBe('PLAN_OUT_OF_BOUNDS');
    const detail = e.details.find((d) => d.path.startsWith('/computations/local_stats/nodes/'));
    expect(detail?.message).toMatch(
      /local_stats: estimated .* FLOPs per evaluation over \d+ batches .*LIMIT_MAX_CLIENT_FLOPS/,
    );
  });

  test("an aggregation's or a server call's computation against the server limits", () => {
    const e = refusedWith({ ...DEFAULT_LIMITS, maxFlops: 1, maxPeakBytes: 4 });
    expect(e.code).toBe('PLAN_OUT_OF_BOUNDS');
    const paths = e.details.map((d) => d.path.replace(/\/nodes\/\d+$/, ''));
    expect(paths).toEqual(expect.arrayContaining(['/computations/accumulate', '/computations/mean_of']));
    // Devices' computations stay under the client limits, which were not lowered.
    expect(paths).not.toContain('/computations/local_stats');
  });
});

describe('checkProgram: secure_sum steps', () => {
  // Steps: 0 client_data data, 1 client_call c = <n, high> int32, 2 secure_sum total, 3 server_call
  // fraction, 4 client_call low, 5 aggregate low_total, 6 dispose.
  const secure = (): Json => secureCountProgram(2, 4, { bitwidth: 8 });

  test('a valid one: the sum is a server value of the summed type, and an aggregation', () => {
    const checked = checkProgram(secure());
    expect(checked.placements.get('total')).toBe('server');
    expect(formatType(checked.types.get('total')!)).toBe('<n=int32,high=int32>');
    expect(checked.aggregations).toEqual([2, 5]);
  });

  test('a secure sum of a server value (a value already at the server)', () => {
    const p = secure();
    p.steps[5] = { op: 'secure_sum', value: 'fraction', bitwidth: 8, min_clients: 2, result: 'low_total' };
    expectRefused(p, 'PROGRAM_PRIVACY_VIOLATION', '/steps/5/value', /"fraction" is a server value/);
  });

  test("a secure sum whose min_clients is below the cohort's", () => {
    const p = secure();
    p.steps[2].min_clients = 1;
    expectRefused(p, 'PROGRAM_PRIVACY_VIOLATION', '/steps/2/min_clients', /less than the cohort's/);
  });

  test('a secure sum of floats, or of a value with an unknown dimension', () => {
    const p = secure();
    p.steps[2].value = 'low';
    p.steps.splice(2, 0, p.steps.splice(4, 1)[0]);
    p.steps[3].value = 'low';
    expectRefused(p, 'PLAN_TYPE_ERROR', '/steps/3/value', /float32 is not all int32/);
    const q = secure();
    q.steps[2].value = 'data';
    expectRefused(q, 'PLAN_TYPE_ERROR', '/steps/2/value', /must not contain a sequence/);
  });

  test('a secure sum naming no kind, or two', () => {
    const p = secure();
    delete p.steps[2].bitwidth;
    expectRefused(p, 'PLAN_TYPE_ERROR', '/steps/2', /exactly one of bitwidth, max_input and modulus.*none/);
    const q = secure();
    q.steps[2].modulus = 8;
    expectRefused(q, 'PLAN_TYPE_ERROR', '/steps/2', /gives bitwidth and modulus/);
  });

  test('a bitwidth out of range is refused by the schema', () => {
    const p = secure();
    p.steps[2].bitwidth = 32;
    expectRefused(p, 'PLAN_SCHEMA_INVALID', '/steps/2/bitwidth');
  });

  test('SecAgg settings the plan of the sum would be refused for, pointed into the step', () => {
    const p = secure();
    p.steps[2].secure_aggregation = { protocol: 'secagg+', degree: 4, threshold: 3 };
    expectRefused(p, 'PLAN_TYPE_ERROR', '/steps/2/secure_aggregation/degree', /degree 4 is even/);
    // A key exchange that leaves no time to upload before the deadline.
    const q = secure();
    q.steps[2].deadline_s = 20;
    q.steps[2].secure_aggregation = { protocol: 'secagg+', sharing_timeout_s: 18 };
    expectRefused(q, 'PLAN_TYPE_ERROR', '/steps/2/deadline_s', /leaves no time to report/);
  });

  test('a key exchange that may outlast the cohort step timeout (waiting devices would be timed out)', () => {
    const p = secure();
    p.cohort.step_timeout_s = 10;
    p.steps[2].deadline_s = 40;
    expectRefused(p, 'PLAN_TYPE_ERROR', '/steps/2/deadline_s', /wait 20 s for the key exchange/);
  });

  test("a deadline whose quarter is below the server's SCHEDULE_MIN_SECONDS", () => {
    const p = secure();
    p.steps[2].deadline_s = 2;
    const e = refusal(p);
    expect(e.code).toBe('PLAN_OUT_OF_BOUNDS');
    expect(e.details).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          path: '/steps/2/deadline_s',
          message: expect.stringMatching(/selection_timeout_s 0.5 is less than the minimum/),
        }),
      ]),
    );
    expect(DEFAULT_LIMITS.scheduleMinSeconds).toBe(1);
  });
});
