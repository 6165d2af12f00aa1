/**
 * Stateful programs for the fuzz (docs/stateful.md): program submissions (the library's programs and the
 * test sum-then-scale program, mutated structurally, rewired so that client values go where they must
 * not, with hostile cohorts, random JSON and bodies that are not JSON), and the devices' requests against
 * live sessions with hostile tokens, ids, query strings and answers.
 */
import fc from 'fast-check';
import { buildPersonalised } from '../../../src/stateful/library/personalised';
import { buildTrainThenEvaluate } from '../../../src/stateful/library/train-then-evaluate';
import type { SessionGrant } from '../../../src/stateful/wire';
import { sumProgram } from '../stateful-programs';
import { EDGE_SCALARS, fieldEditsArb, mutationArb, nameArb } from './json-arbitraries';
import { applyMutation, cloneJson, Doc, PROTO_NAMES, setOwn, type Json } from './json-mutate';
import { jsonRequest, summarize, transportArb, type FuzzRequest } from './plans';
import { authorization, tokenArb, type TokenSpec } from './upload-tokens';

/**
 * The population every fuzzed program recruits in, unless a mutation changed it: nobody checks in there,
 * so an accepted program never starts (the test also cancels it at once).
 */
export const VOID_PROGRAM_POPULATION = 'fuzz-void-programs';

type JsonObject = { [key: string]: Json };

/** The valid programs mutations start from, each recruiting in the void population. */
export function basePrograms(): ReadonlyArray<{ readonly name: string; readonly program: JsonObject }> {
  const small = { rounds: 1, layers: [4, 3, 2], targetClients: 3, minClients: 2 };
  const all = [
    { name: 'sum-then-scale', program: sumProgram(2, 3) as unknown as JsonObject },
    { name: 'train-then-evaluate', program: buildTrainThenEvaluate(small) as unknown as JsonObject },
    { name: 'personalised', program: buildPersonalised(small) as unknown as JsonObject },
  ];
  return all.map(({ name, program }) => {
    const copy = cloneJson(program) as JsonObject;
    setOwn(copy, 'population', VOID_PROGRAM_POPULATION);
    return { name, program: copy };
  });
}

/** Fields of the program format worth aiming at by name. */
const PROGRAM_FIELDS = [
  'steps',
  'op',
  'value',
  'values',
  'fn',
  'args',
  'result',
  'field',
  'zero',
  'accumulate',
  'merge',
  'report',
  'min_clients',
  'target_clients',
  'join_timeout_s',
  'step_timeout_s',
  'bitwidth',
  'max_input',
  'modulus',
  'secure_aggregation',
  'outputs',
  'cohort',
  'client_data',
  'computations',
  'functions',
  'population',
  'collection',
  'format',
  'nodes',
  'type',
  'dtype',
  'shape',
] as const;

const STEP_OPS = [
  'server_call',
  'broadcast',
  'client_data',
  'client_call',
  'client_struct',
  'client_select',
  'aggregate',
  'secure_sum',
  'dispose',
  ...PROTO_NAMES,
];

const programRequest = (body: string, label: string, headers: Record<string, string> = {}) =>
  jsonRequest(body, label, headers, '/v1/programs');

/** A valid program with 1 to 4 structural mutations. */
function mutatedProgramArb(bases: ReturnType<typeof basePrograms>): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(
      fc.nat({ max: bases.length - 1 }),
      fc.array(mutationArb(PROGRAM_FIELDS), { minLength: 1, maxLength: 4 }),
    )
    .map(([i, mutations]) => {
      const base = bases[i]!;
      const doc = new Doc(cloneJson(base.program));
      for (const m of mutations) applyMutation(doc, m);
      return programRequest(doc.serialize(), `mutated ${base.name}: ${summarize(mutations)}`);
    });
}

/** The names a program's steps give their results, and the names of its computations. */
function namesOf(program: JsonObject): { results: string[]; computations: string[] } {
  const steps = program.steps as JsonObject[];
  return {
    results: steps.map((s) => s.result).filter((r): r is string => typeof r === 'string'),
    computations: Object.keys(program.computations as JsonObject),
  };
}

/**
 * A valid program with steps rewired: a field of a step (or an output) set to another step's result, a
 * computation's name, another op, or an edge value. This is how a program tries to move a client value to
 * the server other than through an aggregation (an output or a server call of a client value, a broadcast
 * of one), to use a handle before it exists or after it was disposed, or to aggregate below the minimum.
 */
function rewiredProgramArb(bases: ReturnType<typeof basePrograms>): fc.Arbitrary<FuzzRequest> {
  const field = fc.constantFrom(
    'value',
    'args',
    'fn',
    'result',
    'op',
    'min_clients',
    'zero',
    'report',
    'field',
    'values',
    'output',
  );
  return fc
    .tuple(
      fc.nat({ max: bases.length - 1 }),
      fc.array(fc.tuple(fc.nat(), field, fc.nat(), fc.nat({ max: 9 })), { minLength: 1, maxLength: 3 }),
    )
    .map(([i, rewires]) => {
      const base = bases[i]!;
      const program = cloneJson(base.program) as JsonObject;
      const steps = program.steps as JsonObject[];
      const { results, computations } = namesOf(program);
      const done: string[] = [];
      for (const [at, key, pick, how] of rewires) {
        const step = steps[at % steps.length]!;
        const name = results[pick % results.length]!;
        let value: Json;
        if (key === 'op') value = STEP_OPS[pick % STEP_OPS.length]!;
        else if (key === 'fn' || key === 'zero' || key === 'report')
          value = how < 7 ? computations[pick % computations.length]! : name;
        else if (key === 'min_clients') value = [0, 1, 2, 3, -1, 1.5, 1e9, '2', null, 2 ** 53][how % 10]!;
        else if (key === 'args' || key === 'values') value = how < 5 ? [name] : [name, name];
        else value = how < 8 ? name : EDGE_SCALARS[pick % EDGE_SCALARS.length]!;
        if (key === 'output') {
          setOwn(program.outputs as JsonObject, `leak_${done.length}`, name);
          done.push(`output ${name}`);
        } else {
          setOwn(step, key, value);
          done.push(`step ${at % steps.length} ${key}=${JSON.stringify(value).slice(0, 40)}`);
        }
      }
      return programRequest(JSON.stringify(program), `rewired ${base.name}: ${done.join('; ')}`);
    });
}

/** A valid program whose cohort numbers sit at the edges (such programs are often accepted). */
function cohortProgramArb(bases: ReturnType<typeof basePrograms>): fc.Arbitrary<FuzzRequest> {
  const fields = ['target_clients', 'min_clients', 'join_timeout_s', 'step_timeout_s'];
  const value = fc.oneof(
    fc.constantFrom<Json>(...EDGE_SCALARS, 1, 2, 3, 86_400, 86_401, 1_000_000, 1_000_001, 2.5),
    fc.integer(),
  );
  return fieldEditsArb(bases, fields, value).map(({ base, sets }) => {
    const program = cloneJson(base.program) as { cohort: JsonObject };
    for (const [k, v] of sets) setOwn(program.cohort, k, v);
    return programRequest(JSON.stringify(program), `cohort of ${base.name}: ${JSON.stringify(sets)}`);
  });
}

/** Random JSON, and random objects that look a little like programs. */
function randomProgramArb(): fc.Arbitrary<FuzzRequest> {
  const programish = fc
    .record(
      {
        format: fc.oneof(fc.constant('roundhouse.program/v1'), fc.jsonValue()),
        name: fc.oneof(fc.string(), fc.constantFrom(...PROTO_NAMES)),
        population: fc.oneof(fc.constant(VOID_PROGRAM_POPULATION), nameArb()),
        cohort: fc.jsonValue({ maxDepth: 2 }),
        steps: fc.array(
          fc.record({ op: fc.constantFrom(...STEP_OPS), result: nameArb(), value: nameArb() }),
          { maxLength: 6 },
        ),
        outputs: fc.dictionary(nameArb(), fc.jsonValue({ maxDepth: 1 })),
        computations: fc.dictionary(nameArb(), fc.jsonValue({ maxDepth: 3 })),
      },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o));
  return fc.oneof(
    fc.jsonValue({ maxDepth: 5 }).map((v) => programRequest(JSON.stringify(v), 'random JSON')),
    programish.map((s) => programRequest(s, 'random program-like object')),
  );
}

/**
 * Every kind of program submission, weighted towards mutations and rewirings of valid programs (which get
 * furthest into the checks). The driver adds the operator token unless a request tests one.
 */
export function programRequestArb(): fc.Arbitrary<FuzzRequest> {
  const bases = basePrograms();
  return fc.oneof(
    { arbitrary: mutatedProgramArb(bases), weight: 45 },
    { arbitrary: rewiredProgramArb(bases), weight: 25 },
    { arbitrary: cohortProgramArb(bases), weight: 10 },
    { arbitrary: randomProgramArb(), weight: 10 },
    { arbitrary: transportArb(JSON.stringify(bases[0]!.program), '/v1/programs'), weight: 10 },
  );
}

/** Where a session request goes: its own session, another's, or a hostile segment. */
type Target = { kind: 'own' | 'other' } | { kind: 'segment'; segment: string };

/** One device request against the sessions, abstractly; made concrete when it is sent. */
export interface SessionSpec {
  readonly slot: number;
  /** Acts as a session of a program deleted since (its token still verifies; the session is gone). */
  readonly retired: boolean;
  readonly token: TokenSpec;
  readonly target: Target;
  readonly what:
    | { kind: 'poll'; query: string }
    | { kind: 'answers'; body: string; contentType: string }
    | { kind: 'leave' }
    | { kind: 'client-program' }
    | { kind: 'value'; name: string };
}

const SESSION_CLAIMS = ['program', 'session', 'device', 'typ', 'exp'];

function targetArb(): fc.Arbitrary<Target> {
  return fc.oneof(
    { arbitrary: fc.constant({ kind: 'own' as const }), weight: 12 },
    { arbitrary: fc.constant({ kind: 'other' as const }), weight: 2 },
    {
      arbitrary: fc
        .oneof(nameArb(), fc.constantFrom('0', '-1', '%2F', '%00', 'x'.repeat(2000), '..'))
        .map((s) => ({ kind: 'segment' as const, segment: s.includes('%') ? s : encodeURIComponent(s) })),
      weight: 2,
    },
  );
}

/** A query string for a poll: mostly short waits (a held poll holds a lane), and hostile numbers. */
function pollQueryArb(): fc.Arbitrary<string> {
  const num = fc.constantFrom(
    '0',
    '1',
    '-1',
    '1.5',
    '1e3',
    'abc',
    '',
    '9007199254740993',
    '0x10',
    ' 1',
    'NaN',
  );
  return fc.oneof(
    fc.constant(''),
    num.map((n) => `?wait=${encodeURIComponent(n)}`),
    fc.tuple(num, num).map(([w, a]) => `?wait=${encodeURIComponent(w)}&after=${encodeURIComponent(a)}`),
    fc.constantFrom('?wait=1&wait=2', '?after=1&after=-5', '?wait', '?%zz=1', `?wait=${'9'.repeat(400)}`),
  );
}

/** One answer, from well-formed to hostile; `seq` near the session's real next seq (1 to 4). */
function answerArb(): fc.Arbitrary<Json> {
  const seq = fc.oneof(
    { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 6 },
    { arbitrary: fc.constantFrom<Json>(0, -1, 1.5, 2 ** 31, 2 ** 53, 1e300, '1', null), weight: 1 },
  );
  const created = fc.record({
    seq,
    ok: fc.constant(true),
    // Mostly well-formed, so that answers reach the checks of order and state behind the schema's.
    kind: fc.oneof(
      { arbitrary: fc.constantFrom<Json>('created', 'contributed', 'disposed'), weight: 8 },
      { arbitrary: fc.constantFrom<Json>('read', ...PROTO_NAMES), weight: 1 },
    ),
    handle: fc.oneof(
      { arbitrary: fc.string({ maxLength: 10 }), weight: 8 },
      { arbitrary: fc.constant('h'.repeat(65)), weight: 1 },
    ),
    type: fc.constantFrom<Json>({ kind: 'tensor', dtype: 'float32', shape: [] }, {}, { kind: 'struct' }),
  });
  const failed = fc.record(
    {
      seq,
      ok: fc.constant(false),
      code: fc.constantFrom<Json>('HANDLE_UNKNOWN', 'X', 'lower_case', '', 'A'.repeat(70), 7),
      message: fc.oneof(fc.string({ maxLength: 20 }), fc.constant('m'.repeat(5000))),
    },
    { requiredKeys: ['seq', 'ok'] },
  );
  return fc.oneof(
    { arbitrary: created as fc.Arbitrary<Json>, weight: 6 },
    { arbitrary: failed as fc.Arbitrary<Json>, weight: 1 },
    { arbitrary: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>, weight: 1 },
  );
}

function answersBodyArb(): fc.Arbitrary<{ body: string; contentType: string }> {
  const json = fc.oneof(
    {
      arbitrary: fc.array(answerArb(), { minLength: 1, maxLength: 4 }).map((a) => ({ answers: a })),
      weight: 8,
    },
    {
      arbitrary: fc.constantFrom<Json>(
        { answers: [] },
        { answers: null },
        {},
        [],
        { answers: Array.from({ length: 1025 }, (_, i) => ({ seq: i + 1, ok: true, kind: 'created' })) },
        { answers: [{ seq: 1, ok: true, kind: 'created' }], extra: 1 },
      ),
      weight: 1,
    },
  );
  return fc.oneof(
    { arbitrary: json.map((j) => ({ body: JSON.stringify(j), contentType: 'application/json' })), weight: 8 },
    {
      arbitrary: fc.constantFrom(
        { body: '{"answers":[', contentType: 'application/json' },
        { body: '', contentType: 'application/json' },
        { body: '{"answers":[{"seq":1,"ok":true,"kind":"created"}]}', contentType: 'text/plain' },
        { body: '{"__proto__":{"answers":[]}}', contentType: 'application/json' },
        { body: `{"answers":${'['.repeat(5000)}${']'.repeat(5000)}}`, contentType: 'application/json' },
        {
          body: `{"answers":[{"seq":1,"ok":false,"code":"X","message":"${'m'.repeat(70_000)}"}]}`,
          contentType: 'application/json',
        },
      ),
      weight: 1,
    },
  );
}

/** Device requests against the sessions, weighted towards the session's own token and path. */
export function sessionSpecArb(): fc.Arbitrary<SessionSpec> {
  const what: fc.Arbitrary<SessionSpec['what']> = fc.oneof(
    { arbitrary: pollQueryArb().map((query) => ({ kind: 'poll' as const, query })), weight: 6 },
    { arbitrary: answersBodyArb().map((b) => ({ kind: 'answers' as const, ...b })), weight: 8 },
    { arbitrary: fc.constant({ kind: 'leave' as const }), weight: 1 },
    { arbitrary: fc.constant({ kind: 'client-program' as const }), weight: 2 },
    {
      arbitrary: fc
        .oneof(nameArb(), fc.constantFrom('weights', 'model', 'doubled', 'total', 'w0'))
        .map((name) => ({ kind: 'value' as const, name })),
      weight: 2,
    },
  );
  return fc.record({
    slot: fc.nat(),
    retired: fc.nat({ max: 7 }).map((n) => n === 0),
    token: tokenArb(SESSION_CLAIMS),
    target: targetArb(),
    what,
  });
}

/**
 * The request a spec stands for, against the sessions held now (`live`) or those of programs deleted since
 * (`retired`).
 */
export async function materializeSession(
  spec: SessionSpec,
  pools: { readonly live: readonly SessionGrant[]; readonly retired: readonly SessionGrant[] },
  secret: string,
): Promise<FuzzRequest> {
  const held = spec.retired && pools.retired.length ? pools.retired : pools.live;
  const own = held.length ? held[spec.slot % held.length] : undefined;
  const other = held.length > 1 ? held[(spec.slot + 1) % held.length] : undefined;
  const auth = await authorization(spec.token, own, other, secret);
  const headers: Record<string, string> = auth === undefined ? {} : { authorization: auth };
  const pick = (ownId: string | undefined, otherId: string | undefined): string => {
    if (spec.target.kind === 'segment') return spec.target.segment || 'empty';
    return (spec.target.kind === 'own' ? ownId : otherId) ?? 'no-such-id';
  };
  const session = pick(own?.session_id, other?.session_id);
  const program = pick(own?.program_id, other?.program_id);
  const label = `${spec.what.kind} (token ${spec.token.kind}, ${spec.target.kind} target${spec.retired ? ', deleted program' : ''})`;
  switch (spec.what.kind) {
    case 'poll':
      return { method: 'GET', path: `/v1/sessions/${session}/requests${spec.what.query}`, headers, label };
    case 'answers':
      return {
        method: 'POST',
        path: `/v1/sessions/${session}/answers`,
        headers: { ...headers, 'content-type': spec.what.contentType },
        body: spec.what.body,
        label,
      };
    case 'leave':
      return { method: 'DELETE', path: `/v1/sessions/${session}`, headers, label };
    case 'client-program':
      return { method: 'GET', path: `/v1/programs/${program}/client-program`, headers, label };
    case 'value': {
      const name = encodeURIComponent(spec.what.name) || 'empty';
      return {
        method: 'GET',
        path: `/v1/programs/${program}/values/${name}`,
        headers,
        label: `${label} ${name}`,
      };
    }
  }
}
