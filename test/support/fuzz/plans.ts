/**
 * Plan submissions for the fuzz: valid plans (the hand-written fixture, the library's plans, the test
 * vector-sum plan) mutated structurally, plans with hostile schedules, fully random JSON, and bodies that are
 * not JSON at all. Every generated request is a {@link FuzzRequest} the HTTP driver sends as it is.
 */
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { PLAN_LIBRARY } from '../../../src/plans';
import sumPlanFixture from '../../fixtures/sum-plan.json';
import { vectorSumPlan } from '../plans';
import { EDGE_SCALARS, fieldEditsArb, mutationArb } from './json-arbitraries';
import { applyMutation, cloneJson, deepFragment, Doc, PROTO_NAMES, setOwn, type Json } from './json-mutate';

/** One HTTP request the fuzz sends; `label` says how it was made, for the report of a failure. */
export interface FuzzRequest {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array | string;
  /** The driver adds `Authorization: Bearer <OPERATOR_TOKEN>`. */
  readonly operator?: boolean;
  readonly label: string;
}

/**
 * The population every fuzzed plan is published to, unless a mutation changed it: nobody checks in there,
 * so a plan that is accepted never hands out a task (the driver also cancels it at once).
 */
export const VOID_POPULATION = 'fuzz-void';

/** The valid plans mutations start from, each published to the void population. */
export function basePlans(): ReadonlyArray<{ readonly name: string; readonly plan: Json }> {
  const lib = (name: string, options: Record<string, unknown> = {}) => ({
    name: `${name}${Object.keys(options).length ? JSON.stringify(options) : ''}`,
    plan: PLAN_LIBRARY[name]!.build(options) as unknown as Json,
  });
  const all = [
    { name: 'sum-plan.json', plan: sumPlanFixture as unknown as Json },
    lib('federated-sum'),
    lib('federated-sum', { secure: true }),
    lib('histogram', { bins: 4 }),
    lib('histogram', { bins: 4, secure: true }),
    lib('mean'),
    lib('temperature-sensor'),
    lib('fedavg', { layers: [4, 3, 2], epochs: 1 }),
    { name: 'vector-sum', plan: vectorSumPlan(4, { rounds: 2, target_clients: 3 }) as unknown as Json },
  ];
  return all.map(({ name, plan }) => {
    const copy = cloneJson(plan) as { [key: string]: Json };
    setOwn(copy, 'population', VOID_POPULATION);
    return { name, plan: copy };
  });
}

/** An operator's JSON submission to `path` (a plan by default). */
export function jsonRequest(
  body: string,
  label: string,
  headers: Record<string, string> = {},
  path = '/v1/plans',
): FuzzRequest {
  return {
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', ...headers },
    body,
    operator: true,
    label,
  };
}

/** A valid plan with 1 to 4 structural mutations. */
function mutatedPlanArb(bases: ReturnType<typeof basePlans>): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(fc.nat({ max: bases.length - 1 }), fc.array(mutationArb(), { minLength: 1, maxLength: 4 }))
    .map(([i, mutations]) => {
      const base = bases[i]!;
      const doc = new Doc(cloneJson(base.plan));
      for (const m of mutations) applyMutation(doc, m);
      return jsonRequest(doc.serialize(), `mutated ${base.name}: ${summarize(mutations)}`);
    });
}

/** A valid plan whose schedule numbers sit at the edges (such plans are often accepted). */
function schedulePlanArb(bases: ReturnType<typeof basePlans>): fc.Arbitrary<FuzzRequest> {
  const fields = [
    'rounds',
    'target_clients',
    'over_selection',
    'min_reports',
    'min_clients_in_aggregate',
    'selection_timeout_s',
    'reporting_deadline_s',
  ];
  const value = fc.oneof(
    fc.constantFrom<Json>(...EDGE_SCALARS, 1e-300, 1e300, 1e-9, 604_801, 1_000_000, 10, 10.0001),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
  );
  return fieldEditsArb(bases, fields, value).map(({ base, sets }) => {
    const plan = cloneJson(base.plan) as { schedule: { [key: string]: Json } };
    for (const [k, v] of sets) setOwn(plan.schedule, k, v);
    return jsonRequest(JSON.stringify(plan), `schedule of ${base.name}: ${JSON.stringify(sets)}`);
  });
}

/**
 * A valid plan whose computations call, or name, things after prototype keys: a function named
 * `__proto__`, a call of an undefined `toString`, a node named `constructor`.
 */
function prototypePlanArb(bases: ReturnType<typeof basePlans>): fc.Arbitrary<FuzzRequest> {
  const slot = fc.constantFrom('prepare', 'work', 'zero', 'accumulate', 'merge', 'report', 'update');
  return fc
    .tuple(fc.nat({ max: bases.length - 1 }), fc.constantFrom(...PROTO_NAMES), slot, fc.nat({ max: 2 }))
    .map(([i, name, comp, variant]) => {
      const base = bases[i]!;
      const plan = cloneJson(base.plan) as {
        computations: { [key: string]: { nodes: Json[]; result: string; parameter?: { name: string } } };
        functions?: { [key: string]: Json };
      };
      const c = plan.computations[comp]!;
      const arg = c.parameter?.name;
      let what: string;
      if (variant === 0) {
        // A call of a function that does not exist, named after a prototype key.
        c.nodes.push({ name: 'fuzz_call', op: 'call', args: arg ? [arg] : [], attrs: { fn: name } });
        c.result = 'fuzz_call';
        what = `call of undefined ${name}`;
      } else if (variant === 1) {
        // A function that exists under a prototype name and is called.
        const fns = plan.functions ?? (plan.functions = {});
        setOwn(fns, name, {
          parameter: { name: 'p', type: { kind: 'struct', fields: [] } },
          nodes: [],
          result: 'p',
        });
        const empty = `fuzz_empty`;
        c.nodes.push({ name: empty, op: 'struct', args: [] });
        c.nodes.push({ name: 'fuzz_call', op: 'call', args: [empty], attrs: { fn: name } });
        what = `function ${name} defined and called`;
      } else {
        // A node named after a prototype key that the result refers to.
        c.nodes.push({ name, op: 'struct', args: [] });
        c.result = name;
        what = `node named ${name} as the result`;
      }
      return jsonRequest(JSON.stringify(plan), `${base.name}, ${comp}: ${what}`);
    });
}

/** Plans nested thousands deep where the schema recurses: types, node args, function bodies. */
function deepPlanArb(bases: ReturnType<typeof basePlans>): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(
      fc.nat({ max: bases.length - 1 }),
      fc.constantFrom('element', 'parameter-type', 'whole-body', 'functions'),
      fc.integer({ min: 100, max: 20_000 }),
    )
    .map(([i, where, depth]) => {
      const base = bases[i]!;
      if (where === 'whole-body') {
        return jsonRequest(deepFragment('array', depth).raw, `a body of arrays ${depth} deep`);
      }
      const doc = new Doc(cloneJson(base.plan));
      const plan = doc.root as {
        client_data: { [key: string]: Json };
        computations: { work: { parameter: { [key: string]: Json } } };
        functions?: { [key: string]: Json };
      };
      if (where === 'element') plan.client_data.element = doc.placeholder(deepFragment('type', depth));
      else if (where === 'parameter-type')
        plan.computations.work.parameter.type = doc.placeholder(deepFragment('type', depth));
      else setOwn((plan.functions ??= {}), 'deep', doc.placeholder(deepFragment('object', depth)));
      return jsonRequest(doc.serialize(), `${base.name} with ${where} nested ${depth} deep`);
    });
}

/** Random JSON of any shape, and random objects that look a little like plans. */
function randomPlanArb(): fc.Arbitrary<FuzzRequest> {
  const planish = fc
    .record(
      {
        format: fc.oneof(fc.constant('roundhouse.plan/v1'), fc.jsonValue()),
        name: fc.oneof(fc.string(), fc.constantFrom(...PROTO_NAMES)),
        client_data: fc.jsonValue({ maxDepth: 3 }),
        schedule: fc.jsonValue({ maxDepth: 2 }),
        computations: fc.dictionary(
          fc.constantFrom(
            'prepare',
            'work',
            'zero',
            'accumulate',
            'merge',
            'report',
            'update',
            ...PROTO_NAMES,
          ),
          fc.jsonValue({ maxDepth: 4 }),
        ),
        functions: fc.dictionary(fc.constantFrom(...PROTO_NAMES, 'f', 'g'), fc.jsonValue({ maxDepth: 3 })),
      },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o));
  return fc.oneof(
    fc.jsonValue({ maxDepth: 6 }).map((v) => jsonRequest(JSON.stringify(v), 'random JSON')),
    planish.map((s) => jsonRequest(s, 'random plan-like object')),
  );
}

/**
 * Bodies that are not a JSON document: malformed text, wrong media types and encodings, an empty body;
 * `valid` is a document the server accepts at `path`, sent damaged or with the wrong headers.
 */
export function transportArb(
  valid = JSON.stringify(sumPlanFixture),
  path = '/v1/plans',
): fc.Arbitrary<FuzzRequest> {
  const request = (body: string, label: string, headers: Record<string, string> = {}) =>
    jsonRequest(body, label, headers, path);
  return fc.oneof(
    fc.string({ maxLength: 200 }).map((s) => request(s, 'random text')),
    fc.nat({ max: valid.length }).map((n) => request(valid.slice(0, n), `document truncated at ${n}`)),
    fc.constantFrom(
      request('', 'empty body'),
      request('\uFEFF' + valid, 'byte order mark'),
      request('{"a":1e999999}', 'number out of range'),
      request(
        '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}',
        'prototype keys at the top',
      ),
      request(valid, 'text/plain', { 'content-type': 'text/plain' }),
      request(valid, 'no content type', { 'content-type': '' }),
      request(valid, 'latin1 charset', { 'content-type': 'application/json; charset=latin1' }),
      request(valid, 'utf-16 charset', { 'content-type': 'application/json; charset=utf-16' }),
      request(valid, 'unknown encoding', { 'content-encoding': 'zstd' }),
      request(valid, 'claims gzip, is not', { 'content-encoding': 'gzip' }),
      {
        ...request('', 'gzip of a valid document', { 'content-encoding': 'gzip' }),
        body: gzipSync(Buffer.from(valid)),
      },
      {
        ...request('', 'truncated gzip', { 'content-encoding': 'gzip' }),
        body: gzipSync(Buffer.from(valid)).subarray(0, 100),
      },
      { ...request(valid, 'no operator token'), operator: false },
      {
        ...request(valid, 'wrong operator token'),
        operator: false,
        headers: { 'content-type': 'application/json', authorization: 'Bearer nope' },
      },
    ),
  );
}

/**
 * Every kind of plan submission, weighted towards mutations of valid plans (which get furthest into
 * validation). Requests carry no operator token unless they test one; the driver adds it.
 */
export function planRequestArb(): fc.Arbitrary<FuzzRequest> {
  const bases = basePlans();
  return fc.oneof(
    { arbitrary: mutatedPlanArb(bases), weight: 60 },
    { arbitrary: schedulePlanArb(bases), weight: 10 },
    { arbitrary: prototypePlanArb(bases), weight: 8 },
    { arbitrary: deepPlanArb(bases), weight: 4 },
    { arbitrary: randomPlanArb(), weight: 10 },
    { arbitrary: transportArb(), weight: 8 },
  );
}

/** A short description of mutations for a failure report (payloads cut to a few characters). */
export function summarize(mutations: readonly unknown[]): string {
  return mutations
    .map((m) => {
      const text = JSON.stringify(m, (_k, v: unknown) =>
        v !== null && typeof v === 'object' && 'raw' in v
          ? `raw(${String((v as { raw: string }).raw).slice(0, 40)}…)`
          : v,
      );
      return text.length > 160 ? `${text.slice(0, 160)}…` : text;
    })
    .join('; ');
}
