/**
 * Plans that crashed validation or slipped through it (issue 7, "Plans that crash validation or slip through
 * it"): each is refused with a 4xx code and the JSON pointer of the problem, or, where a name only looked
 * dangerous, works end to end. The same plans go over real HTTP in plan-validation-http.test.ts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { checkSecureSumParams } from '../src/aggregation/secure-sum';
import { appErrorOf } from '../src/app-error.jest';
import { CsvExampleStore } from '../src/client/node';
import { PlanBuilder } from '../src/compute/builder';
import { Interpreter } from '../src/compute/interpreter';
import { tensorType } from '../src/compute/types';
import { sequenceValue, structValue, tensorsOf } from '../src/compute/value';
import { readClientsCsv, toBatches } from '../src/data';
import { AppError, ERROR_CODES, type ErrorCode } from '../src/errors';
import { checkPlan } from '../src/plan/validate';
import { buildFedAvg } from '../src/plans';
import { loadPlan } from '../src/rounds/plan-cache';
import {
  callOfUndefined,
  deeplyNestedPlan,
  hugeConstPlan,
  nestedType,
  renamedFunctionPlan,
  secureSumPlan,
  sumPlan,
  type Json,
} from './support/hostile-plans';

/** Asserts a 4xx AppError with `code` and a detail at exactly `path` whose message matches. */
function expectRefused(f: () => unknown, code: ErrorCode, path: string, message: RegExp): void {
  const e = appErrorOf(f);
  expect(e.code).toBe(code);
  expect(ERROR_CODES[e.code]).toBeGreaterThanOrEqual(400);
  expect(ERROR_CODES[e.code]).toBeLessThan(500);
  const hit = e.details.find((d) => d.path === path && message.test(d.message));
  if (!hit)
    throw new Error(`no detail at ${path} matching ${message}; got:\n${JSON.stringify(e.details, null, 1)}`);
}

describe('deep nesting', () => {
  test('a type nested 2,000 deep is refused before ajv recurses, pointing where the limit is crossed', () => {
    const e = appErrorOf(() => checkPlan(deeplyNestedPlan(2000)));
    expect(e.code).toBe('PLAN_LIMIT_EXCEEDED');
    expect(e.details).toHaveLength(1);
    const at = e.details[0]!;
    expect(at.path).toMatch(/^\/client_data\/element(\/fields\/0\/type)+/);
    expect(at.path.split('/').length - 1).toBe(64); // the depth limit, in pointer tokens
    expect(at.message).toMatch(/nesting deeper than 64 levels/);
  });

  test('nesting anywhere counts: node attrs 10,000 objects deep', () => {
    let deep: Json = {};
    for (let i = 0; i < 10_000; i++) deep = { a: deep };
    const plan = sumPlan((p) => (p.computations.work.nodes[0].attrs = deep));
    const e = appErrorOf(() => checkPlan(plan));
    expect(e.code).toBe('PLAN_LIMIT_EXCEEDED');
    expect(e.details[0]!.path).toMatch(/^\/computations\/work\/nodes\/0\/attrs(\/a)+$/);
  });

  test('a declared type within the JSON bound but deeper than 16 levels points into the type', () => {
    const plan = sumPlan((p) => (p.client_data.element = nestedType(17)));
    expectRefused(
      () => checkPlan(plan),
      'PLAN_LIMIT_EXCEEDED',
      `/client_data/element${'/fields/0/type'.repeat(16)}`,
      /nests deeper than 16 levels/,
    );
  });

  test('a type grown by a chain of struct nodes stops at the node that crosses the limit', () => {
    const plan = sumPlan((p) => {
      const nodes = p.computations.zero.nodes as Json[];
      let prev = nodes[nodes.length - 1].name;
      for (let i = 0; i < 40; i++) {
        nodes.push({ name: `wrap${i}`, op: 'struct', args: [prev] });
        prev = `wrap${i}`;
      }
    });
    const last = (sumPlan().computations.zero.nodes as Json[]).length;
    // The fixture's result is depth 2; the 15th wrap reaches 17.
    expectRefused(
      () => checkPlan(plan),
      'PLAN_LIMIT_EXCEEDED',
      `/computations/zero/nodes/${last + 14}`,
      /zero: node "wrap14" \(struct\): the type nests deeper than 16 levels/,
    );
  });
});

describe('prototype names', () => {
  test.each(['toString', 'constructor', 'hasOwnProperty', 'valueOf'])(
    'a call of an undefined function named %s is a type error at the fn attr',
    (fn) => {
      expectRefused(
        () => checkPlan(callOfUndefined(fn)),
        'PLAN_TYPE_ERROR',
        '/computations/work/nodes/0/attrs/fn',
        new RegExp(`work: node "ghost" \\(call\\): unknown function "${fn}"`),
      );
    },
  );

  test('a call of "__proto__" is refused as a reserved name at the fn attr', () => {
    expectRefused(
      () => checkPlan(callOfUndefined('__proto__')),
      'PLAN_TYPE_ERROR',
      '/computations/work/nodes/0/attrs/fn',
      /not be "__proto__" \(reserved\)/,
    );
  });

  test('an op named "constructor" is an unknown op, not Object', () => {
    const plan = sumPlan((p) => p.computations.work.nodes.splice(0, 0, { name: 'c', op: 'constructor' }));
    expectRefused(
      () => checkPlan(plan),
      'PLAN_TYPE_ERROR',
      '/computations/work/nodes/0',
      /unknown op "constructor"/,
    );
  });

  test('a function named "__proto__" is refused at its key, not accepted and then lost', () => {
    const plan = renamedFunctionPlan('__proto__');
    expect(Object.keys(plan.functions)).toEqual(['__proto__']); // an own key, as JSON.parse made it
    expectRefused(
      () => checkPlan(plan),
      'PLAN_SCHEMA_INVALID',
      '/functions/__proto__',
      /property name "__proto__" .*reserved/,
    );
  });

  test('a node, a parameter and a struct field named "__proto__" are refused', () => {
    const node = sumPlan((p) => (p.computations.work.nodes[0].name = '__proto__'));
    expectRefused(
      () => checkPlan(node),
      'PLAN_SCHEMA_INVALID',
      '/computations/work/nodes/0/name',
      /reserved/,
    );
    const param = sumPlan((p) => (p.computations.prepare.parameter.name = '__proto__'));
    expectRefused(
      () => checkPlan(param),
      'PLAN_SCHEMA_INVALID',
      '/computations/prepare/parameter/name',
      /reserved/,
    );
    const field = sumPlan(
      (p) =>
        (p.client_data.element = { kind: 'struct', fields: [{ name: '__proto__', type: nestedType(0) }] }),
    );
    expectRefused(
      () => checkPlan(field),
      'PLAN_SCHEMA_INVALID',
      '/client_data/element/fields/0/name',
      /reserved/,
    );
  });

  test('the builder refuses a "__proto__" function before it could vanish from the functions table', () => {
    const pb = new PlanBuilder();
    expect(() => pb.fn('__proto__', tensorType('int32', []), (_b, p) => p)).toThrow(
      /"__proto__" is reserved/,
    );
  });

  test.each(['constructor', 'toString', 'hasOwnProperty'])(
    'a function named %s works end to end: checked, run, and served in the client plan',
    (name) => {
      const checked = checkPlan(renamedFunctionPlan(name));
      expect(Object.keys(checked.signatures)).toContain(`function ${name}`);
      const client = JSON.parse(loadPlan('p1', checked).clientPlan.json);
      expect(Object.keys(client.functions)).toEqual([name]);
      expect(Object.hasOwn(client.functions, name)).toBe(true);
      // The client's interpreter runs work, whose fold reaches the function by that name.
      const interpreter = new Interpreter(client.functions);
      const data = sequenceValue([tf.tensor1d([1, 2]), tf.tensor1d([4])]);
      const out = interpreter.run(
        client.work,
        structValue([
          ['data', data],
          ['broadcast', structValue([])],
        ]),
        {
          round: 1,
          label: 'work',
        },
      );
      const [sum] = tensorsOf(out).map((t) => t.dataSync()[0]);
      expect(sum).toBe(7);
      for (const t of [...tensorsOf(out), ...tensorsOf(data)]) t.dispose();
    },
  );
});

describe('huge arrays', () => {
  test('a const literal of 2,000,000 entries is a limit error at its value, not a freeze', () => {
    expectRefused(
      () => checkPlan(hugeConstPlan(2_000_000)),
      'PLAN_LIMIT_EXCEEDED',
      '/computations/zero/nodes/0/attrs/value',
      /array of 2000000 entries is more than the limit of 1048576/,
    );
  });

  test('a document of more than 4,194,304 values is refused where the count runs over', () => {
    const plan = sumPlan((p) => {
      p.computations.zero.nodes[0].attrs.padding = Array.from({ length: 5 }, () =>
        new Array(1_000_000).fill(0),
      );
    });
    const e = appErrorOf(() => checkPlan(plan));
    expect(e.code).toBe('PLAN_LIMIT_EXCEEDED');
    expect(e.details[0]!.path).toMatch(/^\/computations\/zero\/nodes\/0\/attrs\/padding\/\d$/);
    expect(e.details[0]!.message).toMatch(/more than 4194304 values/);
  });

  test('a computation of 1,000,000 nodes is refused before the schema validates each one', () => {
    const plan = sumPlan((p) => {
      for (let i = 0; i < 1_000_000; i++) p.computations.zero.nodes.push({ name: `n${i}`, op: 'abs' });
    });
    expectRefused(
      () => checkPlan(plan),
      'PLAN_LIMIT_EXCEEDED',
      '/computations/zero/nodes',
      /1000003 nodes, more than the limit of 10000/,
    );
  });

  test('a struct of 47,440 invalid fields gets its first schema problem and a note, not every one', () => {
    // Listing every error of this plan took ajv 9.5 s of the API's only thread (the fuzz found it): the
    // errors of each recursive $ref are concatenated into those gathered so far.
    const plan = sumPlan((p) => {
      p.computations.accumulate.parameter.type = { kind: 'struct', fields: new Array(47_440).fill(1) };
    });
    const e = appErrorOf(() => checkPlan(plan));
    expect(e.code).toBe('PLAN_SCHEMA_INVALID');
    expect(e.details.length).toBeLessThan(10);
    expect(e.details.some((d) => d.path.startsWith('/computations/accumulate/parameter/type'))).toBe(true);
    expect(e.details.at(-1)).toEqual({
      path: '/',
      message: 'is more than 10000 JSON values: only its first schema problem is listed',
    });
    // A constant of a million strings where numbers belong: its op's attrs schema stops at the first.
    const strings = sumPlan(
      (p) => (p.computations.zero.nodes[0].attrs.value = new Array(1_000_000).fill('x')),
    );
    expect(appErrorOf(() => checkPlan(strings)).details).toEqual([
      expect.objectContaining({ message: expect.stringMatching(/attrs\/value must be number/) }),
    ]);
  });

  test('a smaller plan gets every schema problem, each at its pointer', () => {
    const plan = sumPlan((p) => {
      p.computations.accumulate.parameter.type = { kind: 'struct', fields: [1, { kind: 'nope' }] };
      p.computations.zero.nodes[1].args = new Array(2000).fill('s');
    });
    const paths = appErrorOf(() => checkPlan(plan)).details.map((d) => d.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/computations/accumulate/parameter/type/fields/0',
        '/computations/accumulate/parameter/type/fields/1',
        '/computations/zero/nodes/1/args',
      ]),
    );
    expect(paths).not.toContain('/');
  });

  test('a node with 2,000 args is refused by the schema', () => {
    const plan = sumPlan((p) => (p.computations.zero.nodes[1].args = new Array(2000).fill('s')));
    expectRefused(
      () => checkPlan(plan),
      'PLAN_SCHEMA_INVALID',
      '/computations/zero/nodes/1/args',
      /must NOT have more than 1024 items/,
    );
  });
});

describe('secure-sum constants', () => {
  const good = { bitwidth: 16, maxInput: 1000, modulus: 4096 };

  test('constants the server accepts pass checkPlan and PlanBuilder.build', () => {
    expect(() => checkPlan(secureSumPlan(good))).not.toThrow();
    expect(() => secureSumPlan(good, true)).not.toThrow();
  });

  const bad: [string, Partial<typeof good>, string, RegExp][] = [
    ['bitwidth 0', { bitwidth: 0 }, 'secure_sum_bitwidth', /gives 0, .*\[1, 31\]/],
    ['bitwidth 40', { bitwidth: 40 }, 'secure_sum_bitwidth', /gives 40, .*\[1, 31\]/],
    ['bitwidth 32', { bitwidth: 32 }, 'secure_sum_bitwidth', /gives 32, .*\[1, 31\]/],
    ['max_input -1', { maxInput: -1 }, 'secure_sum_max_input', /gives -1, .*\[0, 2147483647\]/],
    ['modulus 0', { modulus: 0 }, 'secure_modular_sum_modulus', /gives 0, .*\[1, 2147483647\]/],
  ];

  test.each(bad)('%s is refused by checkPlan at the constant node', (_name, change, slot, message) => {
    expectRefused(
      () => checkPlan(secureSumPlan({ ...good, ...change })),
      'PLAN_TYPE_ERROR',
      `/computations/${slot}/nodes/0`,
      message,
    );
  });

  test.each(bad)('%s is refused by PlanBuilder.build the same way', (_name, change, slot, message) => {
    expectRefused(
      () => secureSumPlan({ ...good, ...change }, true),
      'PLAN_TYPE_ERROR',
      `/computations/${slot}/nodes/0`,
      message,
    );
  });

  test('bad constants in all three slots at once give three pointers', () => {
    const e = appErrorOf(() => checkPlan(secureSumPlan({ bitwidth: 0, maxInput: -1, modulus: 0 })));
    expect(e.details.map((d) => d.path).sort()).toEqual([
      '/computations/secure_modular_sum_modulus/nodes/0',
      '/computations/secure_sum_bitwidth/nodes/0',
      '/computations/secure_sum_max_input/nodes/0',
    ]);
  });

  test('a constant folded through a function call and arithmetic points at the node that made it', () => {
    const plan = secureSumPlan(good) as Json;
    plan.functions.eight = {
      nodes: [{ name: 'e', op: 'const', attrs: { dtype: 'int32', shape: [], value: 8 } }],
      result: 'e',
    };
    plan.computations.secure_sum_bitwidth = {
      nodes: [
        { name: 'a', op: 'call', attrs: { fn: 'eight' } },
        { name: 'b', op: 'mul', args: ['a', 'a'] },
        { name: 'c', op: 'struct', args: ['b'] },
        { name: 'd', op: 'field', args: ['c'], attrs: { index: 0 } },
      ],
      result: 'd',
    };
    expectRefused(
      () => checkPlan(plan),
      'PLAN_TYPE_ERROR',
      '/computations/secure_sum_bitwidth/nodes/1',
      /gives 64/,
    );
  });

  test("the submit-time rule is the server's own, at every boundary", () => {
    const cases: [keyof typeof good, 'bitwidth' | 'max_input' | 'modulus', number[]][] = [
      ['bitwidth', 'bitwidth', [0, 1, 31, 32]],
      ['maxInput', 'max_input', [-1, 0, 2 ** 31 - 1]],
      ['modulus', 'modulus', [0, 1, 2 ** 31 - 1]],
    ];
    for (const [option, kind, values] of cases) {
      for (const v of values) {
        const server = (() => {
          try {
            checkSecureSumParams(kind, [v]);
            return true;
          } catch (e) {
            // Only a refusal counts as one: anything else (a TypeError) is a bug that fails the test.
            if (e instanceof AppError) return false;
            throw e;
          }
        })();
        const submit = (() => {
          try {
            checkPlan(secureSumPlan({ ...good, [option]: v }));
            return true;
          } catch (e) {
            if (e instanceof AppError) return false;
            throw e;
          }
        })();
        expect({ kind, v, submit }).toEqual({ kind, v, submit: server });
      }
    }
  });
});

describe('client data spec', () => {
  const f32 = (shape: (number | null)[]) => ({ kind: 'tensor', dtype: 'float32', shape });
  const withElement = (element: Json, batchSize = 2) =>
    sumPlan((p) => {
      p.client_data.element = element;
      p.client_data.batch_size = batchSize;
    });
  const struct = (...fields: [string, Json][]) => ({
    kind: 'struct',
    fields: fields.map(([name, type]) => ({ name, type })),
  });

  test('duplicate element field names are refused at the second name', () => {
    expectRefused(
      () => checkPlan(withElement(struct(['x', f32([null])], ['x', f32([null])]))),
      'PLAN_TYPE_ERROR',
      '/client_data/element/fields/1/name',
      /field name "x" is used twice/,
    );
  });

  test('a tensor without a batch dimension is refused at its shape', () => {
    expectRefused(
      () => checkPlan(withElement(f32([]))),
      'PLAN_TYPE_ERROR',
      '/client_data/element/shape',
      /has no leading batch dimension/,
    );
  });

  test('a fixed batch dimension other than batch_size is refused at that dimension', () => {
    expectRefused(
      () => checkPlan(withElement(f32([3]), 2)),
      'PLAN_TYPE_ERROR',
      '/client_data/element/shape/0',
      /batch dimension 3 of float32\[3\] is not null and not batch_size 2/,
    );
  });

  test('a fixed batch dimension equal to batch_size is accepted', () => {
    // work's fold takes float32[?], which accepts float32[2].
    expect(() => checkPlan(withElement(f32([2]), 2))).not.toThrow();
  });

  test('an unknown per-example dimension and a sequence inside the element are refused', () => {
    expectRefused(
      () => checkPlan(withElement(struct(['x', f32([null, null])]))),
      'PLAN_TYPE_ERROR',
      '/client_data/element/fields/0/type/shape/1',
      /unknown dimension after the batch dimension/,
    );
    expectRefused(
      () => checkPlan(withElement(struct(['s', { kind: 'sequence', element: f32([null]) }]))),
      'PLAN_TYPE_ERROR',
      '/client_data/element/fields/0/type',
      /not a sequence/,
    );
  });

  test('a declared range must be [min, max] that fits the dtype', () => {
    const y = (range: number[], dtype = 'int32') =>
      struct(['y', { kind: 'tensor', dtype, shape: [null], range }]);
    const at = '/client_data/element/fields/0/type/range';
    expectRefused(() => checkPlan(withElement(y([9, 0]))), 'PLAN_TYPE_ERROR', at, /\[9, 0\] is empty/);
    expectRefused(() => checkPlan(withElement(y([0, 1.5]))), 'PLAN_TYPE_ERROR', at, /int32 integers/);
    expectRefused(() => checkPlan(withElement(y([0, 1], 'bool'))), 'PLAN_TYPE_ERROR', at, /bool/);
    expectRefused(() => checkPlan(withElement(y([0]))), 'PLAN_SCHEMA_INVALID', at, /fewer than 2 items/);
  });
});

describe('labels outside the declared range', () => {
  const element = buildFedAvg({ layers: [2, 3] }).client_data.element;
  const header = 'client_id,x.0,x.1,y';

  test('FedAvg declares its labels as class indices', () => {
    expect(element).toEqual({
      kind: 'struct',
      fields: [
        { name: 'x', type: { kind: 'tensor', dtype: 'float32', shape: [null, 2] } },
        { name: 'y', type: { kind: 'tensor', dtype: 'int32', shape: [null], range: [0, 2] } },
      ],
    });
  });

  test('the clients CSV reader names the file, row and column of a label out of range', () => {
    const csv = `${header}\na,0.1,0.2,2\na,0.3,0.4,3\nb,0.5,0.6,-1\n`;
    const e = appErrorOf(() => readClientsCsv(csv, element, { source: 'clients.csv' }));
    expect(e.code).toBe('DATA_INVALID');
    expect(e.details).toEqual([
      { path: 'clients.csv: row 3, column y', message: '3 is outside the declared range [0, 2] of y' },
      { path: 'clients.csv: row 4, column y', message: '-1 is outside the declared range [0, 2] of y' },
    ]);
    expect(readClientsCsv(`${header}\na,0.1,0.2,2\n`, element).get('a')!.count).toBe(1);
  });

  test('the Node SDK example store reads the file through the same check', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-labels-'));
    const file = path.join(dir, 'mine.csv');
    fs.writeFileSync(file, `${header}\nme,0.1,0.2,1\nme,0.1,0.2,7\n`);
    try {
      const store = new CsvExampleStore({ digits: file });
      await expect(store.examples('digits', element, 2)).rejects.toMatchObject({
        code: 'DATA_INVALID',
        details: [
          { path: `${file}: row 3, column y`, message: '7 is outside the declared range [0, 2] of y' },
        ],
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('in-memory examples (simulator, SDK stores) are refused when batched, naming the example', () => {
    const examples = { count: 3, leaves: [new Float32Array(6), Int32Array.of(0, 2, 5)] };
    const e = appErrorOf(() => toBatches(examples, element, 2));
    expect(e.code).toBe('DATA_INVALID');
    expect(e.details).toEqual([
      { path: 'client: y, example 2', message: '5 is outside the declared range [0, 2] of y' },
    ]);
  });
});

describe('labels outside the declared range through the CLI (compiled: `npm test` builds first)', () => {
  const cli = path.join(__dirname, '..', 'bin', 'roundhouse.js');
  const run = (args: string[], cwd: string) =>
    spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', maxBuffer: 16 << 20 });

  test('run-local refuses a FedAvg label outside [0, classes) naming the file, row and column', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-run-local-labels-'));
    try {
      const built = run(['plans', 'build', 'fedavg', '--layers', '2,3', '--rounds', '1'], dir);
      expect(built.status).toBe(0);
      fs.writeFileSync(path.join(dir, 'plan.json'), built.stdout);
      fs.writeFileSync(path.join(dir, 'clients.csv'), 'client_id,x.0,x.1,y\na,0.1,0.2,1\na,0.1,0.2,3\n');
      const res = run(['run-local', 'plan.json', '--data', 'clients.csv'], dir);
      expect(res.status).not.toBe(0);
      expect(res.stderr).toContain(
        'clients.csv: row 3, column y: 3 is outside the declared range [0, 2] of y',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
