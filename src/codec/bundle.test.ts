import { rejects } from './rejects.jest';
import { readBundle, writeBundle, MAX_HEADER_BYTES, type BundleTensor } from './bundle';

/** A bundle with a hand-made header (object or raw text) and data, with the header length optionally forged. */
function raw(header: unknown, data: ArrayLike<number> = [], forgedLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, forgedLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32 = (begin: number, end: number, shape: number[]) => ({
  dtype: 'F32',
  shape,
  data_offsets: [begin, end],
});

describe('writeBundle', () => {
  test('matches the safetensors layout byte for byte', () => {
    // Written out by hand from the format description; Python's safetensors 0.8
    // (save({"w": float32 [1,-2], "n": int32 7, "ok": True}, metadata={"round": "12"})) emits the same bytes.
    const header =
      '{"__metadata__":{"round":"12"},' +
      '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"n":{"dtype":"I32","shape":[],"data_offsets":[8,12]},' +
      '"ok":{"dtype":"BOOL","shape":[],"data_offsets":[12,13]}}';
    expect(header.length).toBe(193);
    const expected = [
      ...[0xc8, 0, 0, 0, 0, 0, 0, 0], // u64 LE header length: 193 padded to 200
      ...Array.from(header, (c) => c.charCodeAt(0)),
      ...[0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20], // space padding to a multiple of 8
      ...[0x00, 0x00, 0x80, 0x3f], // 1.0f
      ...[0x00, 0x00, 0x00, 0xc0], // -2.0f
      ...[0x07, 0x00, 0x00, 0x00], // int32 7
      ...[0x01], // true
    ];
    // Bools are given first on purpose: the writer moves them after the 4-byte tensors.
    const bytes = writeBundle(
      [
        { name: 'ok', dtype: 'bool', shape: [], data: new Uint8Array([1]) },
        { name: 'w', dtype: 'float32', shape: [2], data: new Float32Array([1, -2]) },
        { name: 'n', dtype: 'int32', shape: [], data: new Int32Array([7]) },
      ],
      { round: '12' },
    );
    expect(Array.from(bytes)).toEqual(expected);
  });

  test('an empty bundle is an 8-byte padded "{}" and nothing else', () => {
    const bytes = writeBundle([]);
    expect(Array.from(bytes)).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32]);
    expect(readBundle(bytes)).toEqual({ metadata: {}, tensors: [] });
  });

  test('keeps the given order for integer-like names (unnamed struct fields)', () => {
    const t = (name: string): BundleTensor => ({
      name,
      dtype: 'int32',
      shape: [1],
      data: new Int32Array([1]),
    });
    const bytes = writeBundle([t('2'), t('10'), t('1')]);
    expect(readBundle(bytes).tensors.map((x) => x.name)).toEqual(['2', '10', '1']);
    const text = new TextDecoder().decode(bytes.subarray(8));
    expect(text.indexOf('"2"')).toBeLessThan(text.indexOf('"10"'));
  });

  test.each([
    [
      'duplicate names',
      [
        { name: 'a', dtype: 'int32', shape: [], data: new Int32Array(1) },
        { name: 'a', dtype: 'int32', shape: [], data: new Int32Array(1) },
      ],
      'a',
    ],
    [
      'the reserved metadata name',
      [{ name: '__metadata__', dtype: 'int32', shape: [], data: new Int32Array(1) }],
      '__metadata__',
    ],
    [
      'a typed array of another dtype',
      [{ name: 'a', dtype: 'float32', shape: [1], data: new Int32Array(1) }],
      'a',
    ],
    [
      'a length that does not fill the shape',
      [{ name: 'a', dtype: 'float32', shape: [2, 2], data: new Float32Array(3) }],
      'a',
    ],
    ['a negative dimension', [{ name: 'a', dtype: 'float32', shape: [-1], data: new Float32Array(0) }], 'a'],
    ['an unknown dtype', [{ name: 'a', dtype: 'toString', shape: [], data: new Float32Array(1) }], 'a'],
    [
      'a bool that is not 0 or 1',
      [{ name: 'a', dtype: 'bool', shape: [2], data: new Uint8Array([1, 2]) }],
      'a',
    ],
  ] as [string, BundleTensor[], string][])('rejects %s', (_, tensors, path) => {
    rejects(() => writeBundle(tensors), 'BUNDLE_TYPE_MISMATCH', path);
  });
});

describe('readBundle', () => {
  test('reads what it writes, with metadata, scalars and zero-sized tensors', () => {
    const tensors: BundleTensor[] = [
      { name: 'm/0', dtype: 'float32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6.5]) },
      { name: 'empty', dtype: 'float32', shape: [0, 4], data: new Float32Array(0) },
      { name: 'i', dtype: 'int32', shape: [], data: new Int32Array([-2147483648]) },
      { name: 'flags', dtype: 'bool', shape: [3], data: new Uint8Array([1, 0, 1]) },
    ];
    const { metadata, tensors: back } = readBundle(writeBundle(tensors, { plan: 'p', ü: 'ß' }));
    expect(metadata).toEqual({ plan: 'p', ü: 'ß' });
    expect(back).toEqual(tensors);
  });

  test('views aligned data without copying and copies unaligned data', () => {
    const bytes = writeBundle([{ name: 'x', dtype: 'float32', shape: [2], data: new Float32Array([3, 4]) }]);
    const aligned = readBundle(bytes).tensors[0]!.data;
    expect(aligned.buffer).toBe(bytes.buffer);

    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const unaligned = readBundle(shifted.subarray(1)).tensors[0]!.data;
    expect(unaligned.buffer).not.toBe(shifted.buffer);
    expect(Array.from(unaligned)).toEqual([3, 4]);
  });

  test('accepts a header whose tensors are listed out of offset order', () => {
    const bytes = raw({ b: f32(4, 8, []), a: f32(0, 4, []) }, [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
    const { tensors } = readBundle(bytes);
    expect(tensors.map((t) => [t.name, t.data[0]])).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  describe('rejects with BUNDLE_MALFORMED', () => {
    test('fewer than 8 bytes', () => {
      expect(rejects(() => readBundle(new Uint8Array(5)), 'BUNDLE_MALFORMED', 'header')).toMatch(/shorter/);
    });
    test('a header length past the end', () => {
      const m = rejects(() => readBundle(raw({}, [], 100n)), 'BUNDLE_MALFORMED', 'header');
      expect(m).toMatch(/runs past the end/);
    });
    test('a header length above the limit or 2^32', () => {
      expect(
        rejects(() => readBundle(raw({}, [], BigInt(MAX_HEADER_BYTES + 1))), 'BUNDLE_MALFORMED', 'header'),
      ).toMatch(/exceeds the limit/);
      expect(rejects(() => readBundle(raw({}, [], 2n ** 40n)), 'BUNDLE_MALFORMED', 'header')).toMatch(
        /1099511627776/,
      );
    });
    test('invalid JSON', () => {
      expect(rejects(() => readBundle(raw('{"a":')), 'BUNDLE_MALFORMED', 'header')).toMatch(/not valid JSON/);
    });
    test('a header that is not an object', () => {
      rejects(() => readBundle(raw('[1]')), 'BUNDLE_MALFORMED', 'header');
      rejects(() => readBundle(raw('{"a":1}')), 'BUNDLE_MALFORMED', 'a');
    });
    test('invalid UTF-8', () => {
      const bytes = raw('{"a":1}');
      bytes[10] = 0xff;
      expect(rejects(() => readBundle(bytes), 'BUNDLE_MALFORMED', 'header')).toMatch(/UTF-8/);
    });
    test('metadata that is not string to string', () => {
      rejects(() => readBundle(raw({ __metadata__: { a: 1 } })), 'BUNDLE_MALFORMED', '__metadata__');
    });
    test('an unknown dtype', () => {
      const m = rejects(
        () => readBundle(raw({ x: { dtype: 'F64', shape: [], data_offsets: [0, 8] } }, new Uint8Array(8))),
        'BUNDLE_MALFORMED',
        'x',
      );
      expect(m).toMatch(/unknown dtype "F64"/);
    });
    test('extra or missing tensor info keys', () => {
      rejects(
        () => readBundle(raw({ x: { ...f32(0, 4, []), extra: 1 } }, new Uint8Array(4))),
        'BUNDLE_MALFORMED',
        'x',
      );
      rejects(
        () => readBundle(raw({ x: { dtype: 'F32', shape: [] } }, new Uint8Array(4))),
        'BUNDLE_MALFORMED',
        'x',
      );
    });
    test('a bad shape', () => {
      rejects(() => readBundle(raw({ x: f32(0, 4, [-1]) }, new Uint8Array(4))), 'BUNDLE_MALFORMED', 'x');
      rejects(() => readBundle(raw({ x: f32(0, 4, [1.5]) }, new Uint8Array(4))), 'BUNDLE_MALFORMED', 'x');
    });
    test('values nested thousands deep or huge, without echoing them (found by the fuzz: a 500)', () => {
      const deep = '['.repeat(20_000) + ']'.repeat(20_000);
      for (const field of ['dtype', 'shape', 'data_offsets']) {
        const info = { dtype: '"F32"', shape: '[1]', data_offsets: '[0,4]', [field]: deep };
        const text = `{"x":{"dtype":${info.dtype},"shape":${info.shape},"data_offsets":${info.data_offsets}}}`;
        const m = rejects(() => readBundle(raw(text, new Uint8Array(4))), 'BUNDLE_MALFORMED', 'x');
        expect(m).toMatch(/an array of 1 items/);
      }
      const huge = `[${new Array(100_000).fill(1).join(',')},-1]`;
      const m = rejects(
        () =>
          readBundle(raw(`{"x":{"dtype":"F32","shape":${huge},"data_offsets":[0,4]}}`, new Uint8Array(4))),
        'BUNDLE_MALFORMED',
        'x',
      );
      expect(m.length).toBeLessThan(300);
    });
    test('offsets that are reversed or not a pair', () => {
      rejects(() => readBundle(raw({ x: f32(4, 0, []) }, new Uint8Array(4))), 'BUNDLE_MALFORMED', 'x');
      rejects(
        () => readBundle(raw({ x: { dtype: 'F32', shape: [], data_offsets: [0] } }, new Uint8Array(4))),
        'BUNDLE_MALFORMED',
        'x',
      );
    });
    test('a byte length that does not match dtype x shape', () => {
      const m = rejects(
        () => readBundle(raw({ x: f32(0, 8, [3]) }, new Uint8Array(8))),
        'BUNDLE_MALFORMED',
        'x',
      );
      expect(m).toMatch(/8 data bytes, but F32 with shape \[3\] needs 12/);
    });
    test('offsets past the data', () => {
      const m = rejects(
        () => readBundle(raw({ x: f32(0, 8, [2]) }, new Uint8Array(4))),
        'BUNDLE_MALFORMED',
        'x',
      );
      expect(m).toMatch(/run past the 4-byte data section/);
    });
    test('overlapping tensors', () => {
      const m = rejects(
        () => readBundle(raw({ a: f32(0, 8, [2]), b: f32(4, 8, [1]) }, new Uint8Array(8))),
        'BUNDLE_MALFORMED',
        'b',
      );
      expect(m).toMatch(/overlap tensor "a"/);
    });
    test('a gap between tensors', () => {
      const m = rejects(
        () => readBundle(raw({ a: f32(0, 4, [1]), b: f32(8, 12, [1]) }, new Uint8Array(12))),
        'BUNDLE_MALFORMED',
        'b',
      );
      expect(m).toMatch(/\[4,8\) before this tensor belong to no tensor/);
    });
    test('trailing bytes no tensor covers', () => {
      const m = rejects(
        () => readBundle(raw({ a: f32(0, 4, [1]) }, new Uint8Array(6))),
        'BUNDLE_MALFORMED',
        'header',
      );
      expect(m).toMatch(/\[4,6\) belong to no tensor/);
    });
    test('a duplicated key, which JSON.parse would silently collapse', () => {
      // The first "a" is dropped by JSON.parse; its bytes are then covered by no tensor.
      const text = `{"a":${JSON.stringify(f32(0, 4, [1]))},"a":${JSON.stringify(f32(4, 8, [1]))}}`;
      rejects(() => readBundle(raw(text, new Uint8Array(8))), 'BUNDLE_MALFORMED', 'a');
    });
    test('a bool byte other than 0 or 1', () => {
      rejects(
        () => readBundle(raw({ b: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } }, [1, 7])),
        'BUNDLE_MALFORMED',
        'b',
      );
    });
  });
});
