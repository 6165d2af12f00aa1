import * as tf from '@tensorflow/tfjs';
import Ajv from 'ajv';
import { readFileSync } from 'fs';
import { join } from 'path';
import { initBackend } from '../backend';
import { assignabilityError } from '../types';
import { getOp, OP_NAMES, STRUCTURAL_OP_NAMES } from './index';
import { opNamed, SMOKE, TEST_CTX, typeOf } from './testing';

beforeAll(() => initBackend());

/** The op names in the ops column of docs/ir.md's "Tensor ops" table, parentheses (notes) dropped. */
function documentedOps(): string[] {
  const doc = readFileSync(join(__dirname, '../../../docs/ir.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Tensor ops'));
  if (!section) throw new Error('docs/ir.md has no "Tensor ops" section');
  const rows = section.split('\n').filter((l) => l.startsWith('|') && !/^\|\s*(family|---)/.test(l));
  return rows.flatMap((row) => {
    const ops = (row.split('|')[2] ?? '').replace(/\([^)]*\)/g, '');
    return [...ops.matchAll(/`([a-z_0-9]+)`/g)].map((m) => m[1]!);
  });
}

test('OP_NAMES is sorted, unique and matches getOp', () => {
  expect([...OP_NAMES]).toEqual([...new Set(OP_NAMES)].sort());
  for (const name of OP_NAMES) expect(getOp(name)?.name).toBe(name);
  expect(getOp('no_such_op')).toBeUndefined();
});

test('every op in the docs/ir.md tensor table is registered, and nothing else', () => {
  const documented = documentedOps();
  expect(documented.length).toBeGreaterThan(60);
  expect([...documented].sort()).toEqual([...OP_NAMES]);
});

test('no tensor op takes a structural op name', () => {
  for (const name of STRUCTURAL_OP_NAMES) expect(getOp(name)).toBeUndefined();
});

test('only random_normal is server only', () => {
  expect(OP_NAMES.filter((n) => getOp(n)?.serverOnly)).toEqual(['random_normal']);
});

test.each(OP_NAMES.map((n) => [n]))('%s attrs schema compiles, strict or not, and is closed', (name) => {
  const schema = opNamed(name).attrs as { type?: string; additionalProperties?: boolean };
  expect(() => new Ajv({ allErrors: true, strict: false }).compile(schema)).not.toThrow();
  expect(() => new Ajv({ strict: true }).compile(schema)).not.toThrow();
  expect(schema.type).toBe('object');
  expect(schema.additionalProperties).toBe(false);
});

test('every op has a smoke case whose arg count fits its arity', () => {
  expect(Object.keys(SMOKE).sort()).toEqual([...OP_NAMES]);
  for (const name of OP_NAMES) {
    const { arity } = opNamed(name);
    const n = SMOKE[name]!.args.length;
    const ok = typeof arity === 'number' ? n === arity : n >= arity.min && n <= (arity.max ?? Infinity);
    expect([name, ok]).toEqual([name, true]);
  }
});

test('every kernel returns what infer promised, and all of them together leak nothing', () => {
  const before = tf.memory().numTensors;
  const wrong: string[] = [];
  for (const name of OP_NAMES) {
    const op = opNamed(name);
    const { args, attrs = {} } = SMOKE[name]!;
    const inferred = op.infer(
      args.map((a) => a.type),
      attrs as Record<string, unknown>,
    );
    tf.tidy(() => {
      const inputs = args.map((a) => tf.tensor([...a.values].map(Number), [...a.shape], a.dtype));
      const why = assignabilityError(
        inferred,
        typeOf(op.run(inputs, attrs as Record<string, unknown>, TEST_CTX)),
      );
      if (why) wrong.push(`${name}: ${why}`);
    });
  }
  expect(wrong).toEqual([]);
  expect(tf.memory().numTensors).toBe(before);
});
