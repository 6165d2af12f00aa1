import { structType, tensorType } from '../compute/types';
import { uploadParts } from './form-steps';

const f32 = (n: number) => tensorType('float32', [n]);
const i32 = tensorType('int32', []);

describe('uploadParts', () => {
  // U has two tensors (one nested), V1 none, V2 one, V3 two: the parts keep bundle (tensorLeaves) order.
  const uploadType = structType([
    [
      'U',
      structType([
        ['w', f32(3)],
        ['more', structType([['b', f32(1)]])],
      ]),
    ],
    ['V1', structType([])],
    ['V2', structType([['count', i32]])],
    [
      'V3',
      structType([
        ['a', i32],
        ['b', i32],
      ]),
    ],
  ]);

  it('splits an upload bundle into U, V1, V2 and V3 in order', () => {
    expect(uploadParts(uploadType, ['w', 'b', 'count', 'a3', 'b3'])).toEqual({
      U: ['w', 'b'],
      V: [[], ['count'], ['a3', 'b3']],
    });
  });

  it('refuses a tensor count the type does not have, and a type that is not <U, V1, V2, V3>', () => {
    expect(() => uploadParts(uploadType, ['w', 'b', 'count', 'a3'])).toThrow(
      '4 tensors for an upload type of 5',
    );
    expect(() => uploadParts(structType([['U', f32(1)]]), ['x'])).toThrow('not <U, V1, V2, V3>');
  });
});
