import { writeBundle, type BundleTensor } from '../codec';
import { structType, tensorType, type TffType } from '../compute/types';
import { selectCases } from '../cli/conformance';
import { compareUpload } from './compare';
import type { KitCase } from './kit';
import { shellQuote } from './runner';

const TYPE: TffType = structType([
  ['w', tensorType('float32', [2, 3])],
  ['n', tensorType('int32', [])],
  ['ok', tensorType('bool', [])],
]);

function bundle(w: number[], n: number, ok: number, names = ['w', 'n', 'ok']): Uint8Array {
  const tensors: BundleTensor[] = [
    { name: names[0]!, dtype: 'float32', shape: [2, 3], data: Float32Array.from(w) },
    { name: names[1]!, dtype: 'int32', shape: [], data: Int32Array.of(n) },
    { name: names[2]!, dtype: 'bool', shape: [], data: Uint8Array.of(ok) },
  ];
  return writeBundle(tensors);
}

const W = [1, -2, 0.5, 100, 0, 3];
const expected = bundle(W, 7, 1);
const tolerance = { abs: 1e-3, rel: 1e-2 };

describe('compareUpload', () => {
  test.each([
    ['the same bundle', bundle(W, 7, 1), undefined],
    ['floats within abs + rel x |expected|', bundle([1.0005, -2, 0.5, 100.9, 0.0009, 3], 7, 1), undefined],
    [
      'a float past the tolerance, with its coordinates',
      bundle([1, -2, 0.5, 101.2, 0, 3], 7, 1),
      'tensor w index 3 [1,0]: got 101.2, expected 100 (tolerance abs 0.001 + rel 0.01 x |expected|)',
    ],
    ['an int32 off by one', bundle(W, 8, 1), 'tensor n index 0: got 8, expected 7'],
    ['a bool flipped', bundle(W, 7, 0), 'tensor ok index 0: got false, expected true'],
    [
      'a tensor under another name',
      bundle(W, 7, 1, ['w', 'count', 'ok']),
      'BUNDLE_TYPE_MISMATCH: bundle does not match type <w=float32[2,3],n=int32,ok=bool> (n: missing; expected int32; count: not part of type <w=float32[2,3],n=int32,ok=bool>)',
    ],
    [
      'a NaN',
      bundle([1, NaN, 0.5, 100, 0, 3], 7, 1),
      'BUNDLE_NOT_FINITE: bundle holds non-finite values (w: element 1 is NaN)',
    ],
    ['bytes that are no bundle', Uint8Array.of(1, 2, 3), expect.stringMatching(/^BUNDLE_MALFORMED: /)],
  ])('%s', (_what, got, why) => {
    expect(compareUpload(got, expected, TYPE, tolerance)).toEqual(why);
  });
});

describe('selectCases', () => {
  const cases = ['mean/one', 'mean/two', 'fedavg/dp', 'fedavg/dp-clipped', 'histogram/a'].map(
    (id): KitCase => ({ id, plan: id.split('/')[0]!, description: '', expect: 'refuse' }),
  );
  const ids = (prefixes: string[]) => {
    const r = selectCases(cases, prefixes);
    return 'cases' in r ? r.cases.map((c) => c.id) : r;
  };

  test('selects by whole path segments, in manifest order', () => {
    expect(ids([])).toHaveLength(5);
    expect(ids(['histogram', 'mean'])).toEqual(['mean/one', 'mean/two', 'histogram/a']);
    expect(ids(['fedavg/dp'])).toEqual(['fedavg/dp']);
    expect(ids(['fedavg/'])).toEqual(['fedavg/dp', 'fedavg/dp-clipped']);
  });

  test('returns the prefixes that select nothing', () => {
    expect(ids(['mea', 'mean', ''])).toEqual({ unknown: ['mea', ''] });
  });
});

test('shellQuote keeps every character of a path literal for sh', () => {
  expect(shellQuote("/tmp/it's here/$HOME")).toBe(`'/tmp/it'\\''s here/$HOME'`);
});
