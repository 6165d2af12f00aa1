import Ajv from 'ajv';
import computationSchema from '../../schemas/computation.schema.json';
import planSchema from '../../schemas/plan.schema.json';
import typeSchema from '../../schemas/type.schema.json';
import { formatType } from '../compute/types';
import type { ClientExamples } from '../data';
import { LocalRunner, runLocal } from '../runner/local-runner';
import { checkPlan } from '../plan/validate';
import { buildFederatedSum, buildHistogram, buildMean, buildTemperatureSensor, PLAN_LIBRARY } from '.';

const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addSchema(typeSchema);
ajv.addSchema(computationSchema);
const validatePlan = ajv.compile(planSchema);

const f32Client = (...values: number[]): ClientExamples => ({
  count: values.length,
  leaves: [Float32Array.from(values)],
});
const i32Client = (...values: number[]): ClientExamples => ({
  count: values.length,
  leaves: [Int32Array.from(values)],
});

describe('the plan library', () => {
  const variants: [string, Record<string, unknown>][] = [
    ...Object.keys(PLAN_LIBRARY).map((name) => [name, {}] as [string, Record<string, unknown>]),
    ['federated-sum', { secure: true, bitwidth: 20 }],
    ['histogram', { secure: true, bins: 4, maxInput: 3 }],
    ['fedavg', { optimizer: 'adam', serverLr: 0.01 }],
    ['fedavg', { momentum: 0.9, layers: [64, 10] }],
    ['fedavg', { layers: [8, 16, 16, 3], epochs: 1, minReports: 10, minClientsInAggregate: 5 }],
    ['fedavg', { secure: true }],
    ['fedavg', { secure: true, layers: [8, 16, 3], optimizer: 'adam', bitwidth: 24, clipRange: 0.1 }],
    ['fedavg', { dp: true, clip: 1, noiseMultiplier: 1, targetEpsilon: 10 }],
    [
      'fedavg',
      { dp: true, clip: 0.1, noiseMultiplier: 0.8, targetEpsilon: 10, adaptiveClip: true, optimizer: 'adam' },
    ],
  ];

  it.each(variants)('%s %j validates against plan.schema.json and passes checkPlan', (name, opts) => {
    const plan = PLAN_LIBRARY[name]!.build(opts);
    const ok = validatePlan(plan);
    expect(validatePlan.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
    const checked = checkPlan(JSON.parse(JSON.stringify(plan)));
    // Values that cross processes have fully known shapes.
    expect(formatType(checked.types.S)).not.toContain('?');
  });

  it('derives the documented form types', () => {
    const t = (p: ReturnType<typeof buildMean>) => {
      const { types } = checkPlan(p);
      return Object.fromEntries(
        Object.entries({ S: types.S, C: types.C, U: types.U, A: types.A, R: types.R, X: types.X }).map(
          ([k, v]) => [k, formatType(v)],
        ),
      );
    };
    expect(t(buildTemperatureSensor())).toEqual({
      S: '<num_rounds=int32>',
      C: '<max_temperature=float32>',
      U: '<is_over=bool>',
      A: '<num_total=int32,num_over=int32>',
      R: '<ratio_over_threshold=float32>',
      X: '<ratio_over_threshold=float32>',
    });
    expect(formatType(checkPlan(buildFederatedSum({ secure: true })).types.V[0])).toBe('int32');
    const fedavg = checkPlan(PLAN_LIBRARY.fedavg!.build({ layers: [4, 3, 2], optimizer: 'adam' })).types;
    const M = '<w0=float32[4,3],b0=float32[3],w1=float32[3,2],b1=float32[2]>';
    expect(formatType(fedavg.S)).toBe(`<model=${M},optimizer=<m=${M},v=${M}>,round=int32>`);
    expect(formatType(fedavg.U)).toBe(`<delta=${M},examples=int32,loss_sum=float32>`);
    expect(formatType(fedavg.X)).toBe('<train_loss=float32,examples=int32,clients=int32>');
    const secure = checkPlan(PLAN_LIBRARY.fedavg!.build({ layers: [4, 3, 2], secure: true })).types;
    const Q = '<w0=int32[4,3],b0=int32[3],w1=int32[3,2],b1=int32[2]>';
    expect(formatType(secure.S)).toBe(`<model=${M},optimizer=<>,round=int32>`);
    expect(formatType(secure.U)).toBe('<>');
    expect(formatType(secure.V[0])).toBe(`<delta=${Q},loss=int32,clients=int32>`);
    expect(formatType(secure.X)).toBe('<train_loss=float32,clients=int32>');
  });

  it('fills the schedule from options and rejects bad option values', () => {
    const plan = buildMean({ rounds: 7, targetClients: 5, minReports: 4 });
    expect(plan.schedule).toEqual({
      rounds: 7,
      target_clients: 5,
      over_selection: 1.3,
      min_reports: 4,
      selection_timeout_s: 60,
      reporting_deadline_s: 300,
    });
    expect(() => buildMean({ rounds: 0 })).toThrow(/option --rounds: 0 is less than 1/);
    expect(() => PLAN_LIBRARY.fedavg!.build({ layers: [64] })).toThrow(
      /--layers: expected at least 2 entries/,
    );
    expect(() => PLAN_LIBRARY.fedavg!.build({ optimizer: 'rmsprop' })).toThrow(
      /--optimizer: "rmsprop" is not one of sgd, adam/,
    );
    expect(() => PLAN_LIBRARY.mean!.build({ nonsense: 1 })).toThrow(/unknown option --nonsense/);
  });
});

describe('analytics plans on hand-computed data', () => {
  it('temperature sensor: the ratio of clients over a threshold of 32, 33, 34 degrees', () => {
    // Client maxima: 33.5, 32.5, 34.5, 31. Over 32: three of four; over 33: two; over 34: one.
    const clients = new Map([
      ['a', f32Client(30, 33.5, 12)],
      ['b', f32Client(31, 32.5, 20)],
      ['c', f32Client(34.5)],
      ['d', f32Client(31, -5)],
    ]);
    const plan = buildTemperatureSensor({ targetClients: 4, batchSize: 2 });
    const outputs = runLocal(plan, clients).map((r) => r.output);
    expect(outputs).toEqual([
      { ratio_over_threshold: 0.75 },
      { ratio_over_threshold: 0.5 },
      { ratio_over_threshold: 0.25 },
    ]);
  });

  const sumClients = () =>
    new Map([
      ['a', i32Client(1, 2, 3)],
      ['b', i32Client(10)],
      ['c', i32Client(5, 5, 5, 5)],
    ]);

  it.each([false, true])('federated sum (secure %s) gives 36 every round', (secure) => {
    const plan = buildFederatedSum({ secure, targetClients: 3, batchSize: 2 });
    const results = runLocal(plan, sumClients(), { rounds: 2 });
    expect(results.map((r) => r.output)).toEqual([{ sum: 36 }, { sum: 36 }]);
    expect(results.every((r) => r.participants === 3)).toBe(true);
  });

  it('the secure sum really goes through secure_sum_bitwidth: a client sum of 20 does not fit 4 bits', () => {
    const plan = buildFederatedSum({
      secure: true,
      bitwidth: 4,
      targetClients: 3,
      minClientsInAggregate: 2,
      batchSize: 2,
    });
    const [r] = runLocal(plan, sumClients(), { rounds: 1 });
    expect(r!.output).toEqual({ sum: 16 });
    expect(r!.rejected.map((x) => x.client)).toEqual(['c']);
  });

  it.each([false, true])('histogram (secure %s) counts values per bin', (secure) => {
    const clients = new Map([
      ['a', i32Client(0, 1, 1, 3)],
      ['b', i32Client(3, 3, 2, 7, -1)], // 7 and -1 are outside [0, 4) and ignored
    ]);
    const plan = buildHistogram({ bins: 4, secure, maxInput: 5, targetClients: 2, batchSize: 3 });
    const [r] = runLocal(plan, clients);
    expect(r!.output).toEqual({ counts: [1, 2, 1, 3], clients: 2 });
  });

  it('secure histogram clips a client to max_input per bin', () => {
    const clients = new Map([
      ['a', i32Client(1, 1, 1, 1)],
      ['b', i32Client(1, 0)],
    ]);
    const [r] = runLocal(buildHistogram({ bins: 2, secure: true, maxInput: 2, targetClients: 2 }), clients);
    expect(r!.output).toEqual({ counts: [1, 3], clients: 2 });
  });

  it('mean weights every value once, whichever client holds it', () => {
    const clients = new Map([
      ['a', f32Client(1, 2, 3)],
      ['b', f32Client(10)],
    ]);
    const [r] = runLocal(buildMean({ targetClients: 2, batchSize: 2 }), clients);
    expect(r!.output).toEqual({ mean: 4, count: 4, clients: 2 });
  });
});

describe('fedavg', () => {
  it('one client round of plain FedAvg lowers that client loss, and reports its examples', () => {
    // Four separable 2-feature examples of two classes; one round of plain FedAvg (server lr 1, no momentum)
    // makes the server model the client's trained model.
    const x = Float32Array.from([1, 0, 0.9, 0.1, 0, 1, 0.2, 0.8]);
    const y = Int32Array.from([0, 0, 1, 1]);
    const data: ClientExamples = { count: 4, leaves: [x, y] };
    const plan = PLAN_LIBRARY.fedavg!.build({
      layers: [2, 4, 2],
      epochs: 3,
      batchSize: 2,
      clientLr: 0.5,
      targetClients: 1,
      rounds: 1,
      collection: 'tiny',
    });
    const runner = new LocalRunner(plan, new Map([['only', data]]), { evaluationData: data });
    try {
      const before = runner.evaluate() as { loss: number; accuracy: number; examples: number };
      const r = runner.runRound();
      const after = r.evaluation as { loss: number; examples: number };
      expect(before.examples).toBe(4);
      expect(after.loss).toBeLessThan(before.loss);
      const out = r.output as { train_loss: number; examples: number; clients: number };
      expect(out.examples).toBe(4);
      expect(out.clients).toBe(1);
      expect(Number.isFinite(out.train_loss)).toBe(true);
    } finally {
      runner.dispose();
    }
  });
});

describe('built plans', () => {
  it('share no object between their parts (editing one computation never changes another)', () => {
    for (const [name, entry] of Object.entries(PLAN_LIBRARY)) {
      const plan = entry.build({});
      const seen = new Set<object>();
      const shared: string[] = [];
      const walk = (v: unknown, path: string): void => {
        if (v === null || typeof v !== 'object') return;
        if (seen.has(v)) shared.push(`${name}: ${path}`);
        seen.add(v);
        for (const [k, x] of Object.entries(v)) walk(x, `${path}/${k}`);
      };
      walk(plan, '');
      expect(shared).toEqual([]);
    }
  });
});
