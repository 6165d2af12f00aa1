import { readBundle, readTypedBundle, writeBundle, type BundleData } from '../codec';
import { appErrorOf } from '../app-error.jest';
import type { UpdateBounds } from '../generated/plan';
import { resolveUpdateBounds, type ResolvedBounds } from '../plan/update-bounds-check';
import { checkPlan } from '../plan/validate';
import { buildFedAvg } from '../plans';
import { applyUpdateBounds, boundUpload } from './update-bounds';

// U = <delta=<w0=float32[2,2], b0=float32[2]>, examples=int32, loss_sum=float32>: leaves 0..3.
const fedavg = buildFedAvg({ layers: [2, 2], targetClients: 2 });
const U = checkPlan(fedavg).types.U;

function resolve(bounds: UpdateBounds): ResolvedBounds {
  const { resolved, errors } = resolveUpdateBounds(bounds, U);
  expect(errors).toEqual([]);
  return resolved!;
}

const update = (w0: number[], b0: number[], examples: number, loss: number): BundleData[] => [
  Float32Array.from(w0),
  Float32Array.from(b0),
  Int32Array.of(examples),
  Float32Array.of(loss),
];

describe('applyUpdateBounds', () => {
  it('clips int32 and float32 elements into their ranges, on copies', () => {
    const bounds = resolve({
      ranges: [
        { path: 'examples', min: 0, max: 1000, mode: 'clip' },
        { path: 'delta', min: -1, max: 1, mode: 'clip' },
      ],
    });
    const data = update([0.5, -3, 2, 1], [0, -1], 2 ** 31 - 1, 0.7);
    const { data: out, changed } = applyUpdateBounds(bounds, data);
    expect(changed).toBe(true);
    expect([...out[0]!]).toEqual([0.5, -1, 1, 1]);
    expect(out[1]).toBe(data[1]);
    expect([...out[2]!]).toEqual([1000]);
    expect(out[3]).toBe(data[3]);
    // The caller's arrays (views of the uploaded bytes) are never written.
    expect([...data[0]!]).toEqual([0.5, -3, 2, 1]);
    expect([...data[2]!]).toEqual([2 ** 31 - 1]);
  });

  it('clips negative int32 claims to the lower end', () => {
    const bounds = resolve({ ranges: [{ path: 'examples', min: 0, max: 10, mode: 'clip' }] });
    expect([...applyUpdateBounds(bounds, update([0, 0, 0, 0], [0, 0], -(2 ** 31), 0)).data[2]!]).toEqual([0]);
  });

  it('leaves an update inside every bound untouched', () => {
    const bounds = resolve({
      ranges: [{ path: 'examples', min: 0, max: 10, mode: 'reject' }],
      norms: [{ paths: ['delta'], max_norm: 5, mode: 'reject' }],
    });
    const data = update([3, 0, 0, 0], [0, 4], 10, 1);
    const { data: out, changed } = applyUpdateBounds(bounds, data);
    expect(changed).toBe(false);
    out.forEach((d, i) => expect(d).toBe(data[i]));
  });

  it('reject names the tensor, the element and the declaration', () => {
    const bounds = resolve({ ranges: [{ path: 'delta', min: -1, max: 1, mode: 'reject' }] });
    const e = appErrorOf(() => applyUpdateBounds(bounds, update([0, 0, 0, 0], [0, 7], 1, 0)));
    expect({ code: e.code, details: e.details }).toEqual({
      code: 'UPDATE_OUT_OF_BOUNDS',
      details: [{ path: 'delta/b0', message: 'element 1 is 7, outside [-1, 1] (/update_bounds/ranges/0)' }],
    });
  });

  it('scales a group of tensors together down to the norm bound', () => {
    // delta's elements form the vector (3, 0, 0, 0, 0, 4): norm 5, scaled by 2/5 to norm 2.
    const bounds = resolve({ norms: [{ paths: ['delta/w0', 'delta/b0'], max_norm: 2, mode: 'clip' }] });
    const data = update([3, 0, 0, 0], [0, 4], 7, 0.5);
    const { data: out, changed } = applyUpdateBounds(bounds, data);
    expect(changed).toBe(true);
    expect([...out[0]!].map((v) => +v.toFixed(6))).toEqual([1.2, 0, 0, 0]);
    expect([...out[1]!].map((v) => +v.toFixed(6))).toEqual([0, 1.6]);
    expect(out[2]).toBe(data[2]);
  });

  it('brings deltas of 3.4e38 to the bound without overflowing to infinity', () => {
    const bounds = resolve({ norms: [{ paths: ['delta'], max_norm: 10, mode: 'clip' }] });
    const { data: out } = applyUpdateBounds(
      bounds,
      update([3.4e38, 3.4e38, -3.4e38, 3.4e38], [3.4e38, 0], 1, 0),
    );
    const values = [...out[0]!, ...out[1]!];
    expect(values.every(Number.isFinite)).toBe(true);
    expect(Math.hypot(...values)).toBeCloseTo(10, 4);
  });

  it('reject refuses an update over the norm bound, naming its tensors', () => {
    const bounds = resolve({ norms: [{ paths: ['delta'], max_norm: 4, mode: 'reject' }] });
    const e = appErrorOf(() => applyUpdateBounds(bounds, update([3, 0, 0, 0], [0, 4], 1, 0)));
    expect(e.code).toBe('UPDATE_OUT_OF_BOUNDS');
    expect(e.details[0]!.message).toBe('L2 norm 5 of delta/w0, delta/b0 is over 4 (/update_bounds/norms/0)');
  });

  it('applies ranges before norms', () => {
    const bounds = resolve({
      ranges: [{ path: 'delta/w0', min: -3, max: 3, mode: 'clip' }],
      norms: [{ paths: ['delta'], max_norm: 5, mode: 'reject' }],
    });
    // w0[0] = 100 is clipped to 3 first, so the norm is 5 and the reject bound holds.
    const { data: out } = applyUpdateBounds(bounds, update([100, 0, 0, 0], [0, 4], 1, 0));
    expect([...out[0]!]).toEqual([3, 0, 0, 0]);
  });
});

describe('boundUpload', () => {
  const checked = checkPlan({
    ...fedavg,
    update_bounds: { ranges: [{ path: 'examples', min: 0, max: 50, mode: 'clip' }] },
  });

  function uploadBytes(examples: number): Uint8Array {
    // The upload is <U, V1, V2, V3> with empty Vs: U's leaves under "0/...".
    return writeBundle([
      { name: '0/delta/w0', dtype: 'float32', shape: [2, 2], data: new Float32Array(4).fill(1) },
      { name: '0/delta/b0', dtype: 'float32', shape: [2], data: new Float32Array(2) },
      { name: '0/examples', dtype: 'int32', shape: [], data: Int32Array.of(examples) },
      { name: '0/loss_sum', dtype: 'float32', shape: [], data: Float32Array.of(1) },
    ]);
  }
  const workResult = checked.signatures.work!.result;

  it('re-encodes a clipped upload with the same tensor names', () => {
    const bytes = uploadBytes(2 ** 31 - 1);
    const before = Buffer.from(bytes).toString('hex');
    const { tensors, metadata } = readTypedBundle(bytes, workResult);
    const stored = boundUpload(checked, tensors, metadata)!;
    expect(stored).toBeDefined();
    expect(Buffer.from(bytes).toString('hex')).toBe(before);
    const read = readBundle(stored);
    expect(read.tensors.map((t) => t.name).sort()).toEqual([
      '0/delta/b0',
      '0/delta/w0',
      '0/examples',
      '0/loss_sum',
    ]);
    expect([...read.tensors.find((t) => t.name === '0/examples')!.data]).toEqual([50]);
    expect(() => readTypedBundle(stored, workResult)).not.toThrow();
  });

  it('stores an upload inside its bounds as it came', () => {
    const { tensors, metadata } = readTypedBundle(uploadBytes(10), workResult);
    expect(boundUpload(checked, tensors, metadata)).toBeUndefined();
  });

  it('is a no-op for a plan without bounds', () => {
    const { update_bounds: _bounds, ...withoutBounds } = fedavg;
    const plain = checkPlan(withoutBounds);
    const { tensors, metadata } = readTypedBundle(uploadBytes(2 ** 31 - 1), workResult);
    expect(boundUpload(plain, tensors, metadata)).toBeUndefined();
  });
});
