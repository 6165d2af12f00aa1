import { sequenceType, structType, tensorType } from '../compute/types';
import { AppError } from '../errors';
import { checkClientExamples, exampleLeaves } from './client-examples';

function paths(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('DATA_INVALID');
    return (e as AppError).details.map((d) => d.path);
  }
  throw new Error('expected a DATA_INVALID error');
}

describe('exampleLeaves', () => {
  test('strips the batch dimension', () => {
    const element = structType([
      ['img', tensorType('float32', [null, 8, 8])],
      [undefined, tensorType('int32', [4])],
    ]);
    expect(exampleLeaves(element, 4)).toEqual([
      { path: ['img'], dtype: 'float32', batchDim: null, exampleShape: [8, 8], exampleSize: 64 },
      { path: ['1'], dtype: 'int32', batchDim: 4, exampleShape: [], exampleSize: 1 },
    ]);
  });

  test('reports every bad leaf', () => {
    const element = structType([
      ['a', tensorType('float32', [])],
      ['b', tensorType('float32', [null, null])],
      ['c', tensorType('float32', [3])],
      ['d', tensorType('float32', [null])],
    ]);
    expect(paths(() => exampleLeaves(element, 2))).toEqual(['a', 'b', 'c']);
    expect(
      paths(() => exampleLeaves(structType([['s', sequenceType(tensorType('float32', [null]))]]))),
    ).toEqual(['element']);
  });
});

describe('checkClientExamples', () => {
  const leaves = exampleLeaves(structType([['m', tensorType('bool', [null, 2])]]));
  test('accepts fitting data and rejects bools other than 0/1 and negative counts', () => {
    expect(() => checkClientExamples({ count: 1, leaves: [new Uint8Array([0, 1])] }, leaves)).not.toThrow();
    expect(paths(() => checkClientExamples({ count: 1, leaves: [new Uint8Array([0, 2])] }, leaves))).toEqual([
      'client: m',
    ]);
    expect(
      paths(() => checkClientExamples({ count: -1, leaves: [new Uint8Array(0)] }, leaves, 'c7')),
    ).toEqual(['c7']);
  });
});
