/**
 * Damaged tensor bundles for the upload fuzz, as fast-check draws them: valid safetensors bundles of a
 * plan's upload type filled with extreme values, and the same with their header, length, tensors or bytes
 * damaged, plus compression tricks (gzip bombs, corrupt or unknown encodings). bundle-writer.ts writes them.
 */
import fc from 'fast-check';
import { PROTO_NAMES, type Json, type Mutation } from './json-mutate';
import { mutationArb } from './json-arbitraries';

/** How a valid bundle is filled. */
export type Fill =
  'small' | 'zero' | 'max' | 'min' | 'huge' | 'nan' | 'inf' | '-inf' | 'denormal' | 'random' | 'negative';

/** What an upload body is, abstractly. */
export type BodySpec =
  | { kind: 'valid'; fill: Fill; dims: number; seed: number }
  | {
      kind: 'typed';
      change: 'dtype' | 'shape' | 'rename' | 'drop' | 'extra' | 'dup-name' | 'metadata';
      pick: number;
      to: Json;
    }
  | { kind: 'header'; mutations: Mutation[] }
  | { kind: 'header-length'; claim: bigint }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'random'; bytes: Uint8Array }
  | { kind: 'empty' }
  | { kind: 'huge-claim'; elements: number }
  | { kind: 'oversize' };

/** How the body is encoded on the wire. */
export type EncodingSpec =
  'none' | 'gzip' | 'deflate' | 'br' | 'gzip-corrupt' | 'bomb' | 'unknown' | 'double-gzip' | 'identity';

function fillArb(): fc.Arbitrary<Fill> {
  return fc.constantFrom(
    'small',
    'small',
    'small',
    'zero',
    'max',
    'min',
    'huge',
    'nan',
    'inf',
    '-inf',
    'denormal',
    'random',
    'negative',
  );
}

/** Upload bodies, weighted towards nearly valid bundles. */
export function bodyArb(): fc.Arbitrary<BodySpec> {
  const headerFields = ['dtype', 'shape', 'data_offsets', '__metadata__', 'format', 'clients'];
  return fc.oneof(
    {
      arbitrary: fc.record({
        kind: fc.constant('valid' as const),
        fill: fillArb(),
        dims: fc.integer({ min: 0, max: 4 }),
        seed: fc.nat(),
      }),
      weight: 1500,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('typed' as const),
        change: fc.constantFrom('dtype', 'shape', 'rename', 'drop', 'extra', 'dup-name', 'metadata' as const),
        pick: fc.nat(),
        to: fc.oneof(
          fc.constantFrom<Json>(
            'F64',
            'I64',
            'U8',
            'BOOL',
            'I32',
            'F32',
            'F16',
            '',
            'f32',
            [1, 2],
            [0],
            [],
            [-1],
            [1e9, 1e9],
            [2 ** 53],
            [0.5],
            ['1'],
            [null],
            'value',
            '__metadata__',
            ...PROTO_NAMES,
          ),
          fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
        ),
      }),
      weight: 1000,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('header' as const),
        mutations: fc.array(mutationArb(headerFields), { minLength: 1, maxLength: 3 }),
      }),
      weight: 750,
    },
    {
      arbitrary: fc
        .constantFrom(0n, 1n, 7n, 2n ** 64n - 1n, 2n ** 53n, 2n ** 32n, 100_000_001n, 99_999_999n, 4096n)
        .map((claim) => ({ kind: 'header-length' as const, claim })),
      weight: 200,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('truncate' as const),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      weight: 300,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('append' as const),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
      }),
      weight: 150,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('random' as const),
        bytes: fc.uint8Array({ maxLength: 2048 }),
      }),
      weight: 200,
    },
    { arbitrary: fc.constant({ kind: 'empty' as const }), weight: 50 },
    {
      arbitrary: fc
        .constantFrom(1e9, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 1e15)
        .map((elements) => ({ kind: 'huge-claim' as const, elements })),
      weight: 150,
    },
    // A real body over MAX_UPLOAD_BYTES: rare, since each one moves 65 MiB.
    { arbitrary: fc.constant({ kind: 'oversize' as const }), weight: 1 },
  );
}

/** Content encodings, mostly none. */
export function encodingArb(): fc.Arbitrary<EncodingSpec> {
  return fc.oneof(
    { arbitrary: fc.constant('none' as const), weight: 400 },
    {
      arbitrary: fc.constantFrom(
        'gzip',
        'deflate',
        'br',
        'gzip-corrupt',
        'unknown',
        'double-gzip',
        'identity' as const,
      ),
      weight: 70,
    },
    // Each bomb costs the server an inflate up to MAX_UPLOAD_BYTES: a handful per run.
    { arbitrary: fc.constant('bomb' as const), weight: 1 },
  );
}
