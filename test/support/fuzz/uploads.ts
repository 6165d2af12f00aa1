/**
 * Uploads for the fuzz. fast-check draws an abstract {@link UploadSpec} (which target plan, which token
 * trick, which body damage); {@link materializeUpload} turns it into bytes against the tasks the driver holds
 * at that moment, so that most uploads carry a real task token and get past the token check into the bundle
 * decoder, the type check and the store.
 */
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { bundleLeaves } from '../../../src/codec';
import type { TffType } from '../../../src/compute/types';
import {
  applyMutation,
  Doc,
  mutationArb,
  nameArb,
  PROTO_NAMES,
  type Json,
  type Mutation,
} from './json-mutate';
import type { FuzzRequest } from './plans';

/** A task the driver holds: what a check-in answered. */
export interface HeldTask {
  readonly task_id: string;
  readonly token: string;
  readonly plan_id: string;
  readonly round: number;
  readonly attempt: number;
  /** The device that checked in for it (anonymous mode), presented again at upload. */
  readonly device: string;
}

/** A plan uploads are aimed at, with the tasks currently held for it. */
export interface UploadTarget {
  readonly name: string;
  readonly planId: string;
  readonly population: string;
  readonly uploadType: TffType;
  tasks: HeldTask[];
}

/** What the materializer needs besides the targets. */
export interface UploadContext {
  readonly targets: readonly UploadTarget[];
  /** TOKEN_SECRET of the server under test: tokens with valid signatures and hostile claims. */
  readonly tokenSecret: string;
}

type TokenSpec =
  | { kind: 'own' | 'other' | 'none' | 'forged' | 'alg-none' | 'expired' }
  | { kind: 'garbage'; text: string }
  | { kind: 'scheme'; header: string }
  | { kind: 'claims'; claims: Record<string, Json> };

type PathSpec = { kind: 'own' } | { kind: 'other' } | { kind: 'name'; name: string };

type Fill =
  'small' | 'zero' | 'max' | 'min' | 'huge' | 'nan' | 'inf' | '-inf' | 'denormal' | 'random' | 'negative';

type BodySpec =
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

type EncodingSpec =
  'none' | 'gzip' | 'deflate' | 'br' | 'gzip-corrupt' | 'bomb' | 'unknown' | 'double-gzip' | 'identity';

/** What the upload says in `X-Device-Credential`. */
type DeviceSpec = 'own' | 'none' | 'other' | { text: string };

/** An upload, abstractly. */
export interface UploadSpec {
  readonly target: number;
  readonly slot: number;
  readonly device: DeviceSpec;
  readonly token: TokenSpec;
  readonly path: PathSpec;
  readonly contentType: string | null;
  readonly encoding: EncodingSpec;
  readonly body: BodySpec;
}

const claimValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(0, -1, 1.5, 2 ** 53, 1e300, '1', '', null, true, [], {}, ...PROTO_NAMES),
  fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json>,
);

function tokenArb(): fc.Arbitrary<TokenSpec> {
  return fc.oneof(
    { arbitrary: fc.constant({ kind: 'own' as const }), weight: 40 },
    {
      arbitrary: fc
        .constantFrom(...(['other', 'none', 'forged', 'alg-none', 'expired'] as const))
        .map((kind) => ({ kind })),
      weight: 5,
    },
    {
      arbitrary: fc.string({ maxLength: 300 }).map((text) => ({ kind: 'garbage' as const, text })),
      weight: 1,
    },
    {
      arbitrary: fc
        .constantFrom(
          'Basic Zm9vOmJhcg==',
          'Bearer',
          'Bearer a b',
          'bearer x.y.z',
          'Bearer ' + 'a'.repeat(9000),
          'Token x',
        )
        .map((header) => ({ kind: 'scheme' as const, header })),
      weight: 1,
    },
    {
      arbitrary: fc
        .dictionary(
          fc.constantFrom('plan', 'round', 'attempt', 'task', 'client', 'device', 'exp', ...PROTO_NAMES),
          claimValue,
          {
            minKeys: 1,
            maxKeys: 3,
          },
        )
        .map((claims) => ({ kind: 'claims' as const, claims: claims as Record<string, Json> })),
      weight: 4,
    },
  );
}

function pathArb(): fc.Arbitrary<PathSpec> {
  return fc.oneof(
    { arbitrary: fc.constant({ kind: 'own' as const }), weight: 40 },
    { arbitrary: fc.constant({ kind: 'other' as const }), weight: 2 },
    {
      arbitrary: fc
        .oneof(nameArb(), fc.constantFrom('..%2F..%2Fplans', '%00', 'x'.repeat(5000), '%E0%A4%A', 'a%2Fb'))
        .map((name) => ({ kind: 'name' as const, name })),
      weight: 2,
    },
  );
}

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

function bodyArb(): fc.Arbitrary<BodySpec> {
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

function encodingArb(): fc.Arbitrary<EncodingSpec> {
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

function contentTypeArb(): fc.Arbitrary<string | null> {
  return fc.oneof(
    { arbitrary: fc.constant('application/octet-stream'), weight: 40 },
    {
      arbitrary: fc.constantFrom<string | null>(
        null,
        'application/json',
        'text/plain',
        'APPLICATION/OCTET-STREAM',
        'application/octet-stream; charset=utf-8',
        'multipart/form-data; boundary=x',
        '',
      ),
      weight: 2,
    },
  );
}

/** Every kind of upload, weighted towards a real token and a bundle that is nearly right. */
export function uploadSpecArb(): fc.Arbitrary<UploadSpec> {
  return fc.record({
    target: fc.nat(),
    slot: fc.nat(),
    device: fc.oneof(
      { arbitrary: fc.constant<DeviceSpec>('own'), weight: 40 },
      { arbitrary: fc.constantFrom<DeviceSpec>('none', 'other'), weight: 2 },
      {
        arbitrary: fc
          .oneof(nameArb(), fc.constantFrom('x'.repeat(10_000), 'a.b.c', 'eyJhbGciOiJub25lIn0.e30.'))
          .map((text): DeviceSpec => ({ text })),
        weight: 1,
      },
    ),
    token: tokenArb(),
    path: pathArb(),
    contentType: contentTypeArb(),
    encoding: encodingArb(),
    body: bodyArb(),
  });
}

const WIRE: Record<string, string> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };

/** A deterministic pseudo-random stream (mulberry32), for filling tensors from a drawn seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fillValue(fill: Fill, dtype: string, r: () => number): number {
  if (dtype === 'bool') return fill === 'max' ? 2 : r() < 0.5 ? 0 : 1;
  const int = dtype === 'int32';
  switch (fill) {
    case 'small':
      return Math.floor(r() * 10);
    case 'zero':
      return 0;
    case 'max':
      return int ? 2 ** 31 - 1 : 3.4e38;
    case 'min':
      return int ? -(2 ** 31) : -3.4e38;
    case 'huge':
      return int ? 2 ** 30 : 1e30;
    case 'nan':
      return int ? 0 : NaN;
    case 'inf':
      return int ? 2 ** 31 - 1 : Infinity;
    case '-inf':
      return int ? -(2 ** 31) : -Infinity;
    case 'denormal':
      return int ? 1 : 1e-45;
    case 'random':
      return int ? Math.floor((r() - 0.5) * 2 ** 32) : (r() - 0.5) * 2 ** (Math.floor(r() * 256) - 128);
    case 'negative':
      return -1 - Math.floor(r() * 100);
  }
}

interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** The tensors of a bundle of `type`, unknown dimensions sized `dims`, filled as `fill` says. */
function tensorsFor(type: TffType, fill: Fill, dims: number, seed: number): RawTensor[] {
  const r = rng(seed);
  return bundleLeaves(type).map(({ name, leaf }) => {
    const shape = leaf.type.shape.map((d) => (d === null ? dims : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const dtype = leaf.type.dtype;
    const data =
      dtype === 'float32' ? new Float32Array(n) : dtype === 'int32' ? new Int32Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = fillValue(fill, dtype, r);
    return { name, dtype: WIRE[dtype]!, shape, bytes: new Uint8Array(data.buffer) };
  });
}

/** Header entries in offset order, and the data they describe. */
function layout(tensors: RawTensor[], metadata?: Json): { entries: [string, Json][]; data: Uint8Array } {
  const entries: [string, Json][] = [];
  if (metadata !== undefined) entries.push(['__metadata__', metadata]);
  let offset = 0;
  for (const t of tensors) {
    entries.push([
      t.name,
      { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] },
    ]);
    offset += t.bytes.length;
  }
  const data = new Uint8Array(offset);
  offset = 0;
  for (const t of tensors) {
    data.set(t.bytes, offset);
    offset += t.bytes.length;
  }
  return { entries, data };
}

/** Writes header text and data as a safetensors file; `claim` overrides the header length field. */
function frame(headerText: string, data: Uint8Array, claim?: bigint): Uint8Array {
  const json = Buffer.from(headerText, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + data.length);
  new DataView(out.buffer).setBigUint64(0, claim ?? BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  out.set(data, 8 + padded);
  return out;
}

function headerText(entries: unknown, doc?: Doc): string {
  // A mutation may have replaced the whole entry list: then the header is whatever JSON it became.
  const text = Array.isArray(entries)
    ? `{${entries
        .map((e: unknown) =>
          Array.isArray(e) && typeof e[0] === 'string'
            ? `${JSON.stringify(e[0])}:${JSON.stringify(e[1] ?? null)}`
            : `${JSON.stringify(JSON.stringify(e ?? null))}:${JSON.stringify(e ?? null)}`,
        )
        .join(',')}}`
    : (JSON.stringify(entries) ?? 'null');
  return doc ? doc.splice(text) : text;
}

function body(spec: BodySpec, type: TffType): Uint8Array {
  const valid = (fill: Fill = 'small', dims = 2, seed = 1) => layout(tensorsFor(type, fill, dims, seed));
  switch (spec.kind) {
    case 'valid': {
      const { entries, data } = valid(spec.fill, spec.dims, spec.seed);
      return frame(headerText(entries), data);
    }
    case 'typed': {
      const tensors = tensorsFor(type, 'small', 2, spec.pick);
      const t = tensors[spec.pick % Math.max(1, tensors.length)];
      let metadata: Json | undefined;
      const extra: [string, Json][] = [];
      switch (spec.change) {
        case 'dtype':
          if (t) t.dtype = spec.to as string;
          break;
        case 'shape':
          if (t) t.shape = spec.to as number[];
          break;
        case 'rename':
          if (t) t.name = typeof spec.to === 'string' ? spec.to : JSON.stringify(spec.to);
          break;
        case 'drop':
          if (t) tensors.splice(tensors.indexOf(t), 1);
          break;
        case 'extra':
          tensors.push({
            name: typeof spec.to === 'string' ? spec.to : 'extra',
            dtype: 'F32',
            shape: [1],
            bytes: new Uint8Array(4),
          });
          break;
        case 'dup-name':
          if (t) extra.push([t.name, { dtype: t.dtype, shape: t.shape, data_offsets: [0, t.bytes.length] }]);
          break;
        case 'metadata':
          metadata = spec.to;
          break;
      }
      const { entries, data } = layout(tensors, metadata);
      return frame(headerText([...entries, ...extra]), data);
    }
    case 'header': {
      const { entries, data } = valid();
      const doc = new Doc(entries as unknown as Json);
      for (const m of spec.mutations) applyMutation(doc, m);
      return frame(headerText(doc.root, doc), data);
    }
    case 'header-length': {
      const { entries, data } = valid();
      return frame(headerText(entries), data, spec.claim);
    }
    case 'truncate': {
      const whole = body({ kind: 'valid', fill: 'small', dims: 2, seed: 1 }, type);
      return whole.subarray(0, Math.floor(spec.at * whole.length));
    }
    case 'append': {
      const whole = body({ kind: 'valid', fill: 'small', dims: 2, seed: 1 }, type);
      return Buffer.concat([whole, spec.bytes]);
    }
    case 'random':
      return spec.bytes;
    case 'empty':
      return new Uint8Array(0);
    case 'huge-claim': {
      const tensors = tensorsFor(type, 'small', 2, 1);
      const { entries, data } = layout(tensors);
      const first = entries[0];
      if (first) first[1] = { dtype: 'F32', shape: [spec.elements], data_offsets: [0, spec.elements * 4] };
      return frame(headerText(entries), data);
    }
    case 'oversize':
      return new Uint8Array(65 * 1024 * 1024);
  }
}

let bomb: Uint8Array | undefined;
/** 80 MiB of zeros, gzipped to about 80 KiB: more than MAX_UPLOAD_BYTES once inflated. */
function gzipBomb(): Uint8Array {
  return (bomb ??= gzipSync(Buffer.alloc(80 * 1024 * 1024), { level: 9 }));
}

function encode(encoding: EncodingSpec, bytes: Uint8Array): { bytes: Uint8Array; header?: string } {
  switch (encoding) {
    case 'none':
      return { bytes };
    case 'identity':
      return { bytes, header: 'identity' };
    case 'gzip':
      return { bytes: gzipSync(bytes), header: 'gzip' };
    case 'deflate':
      return { bytes: deflateSync(bytes), header: 'deflate' };
    case 'br':
      return { bytes: brotliCompressSync(bytes), header: 'br' };
    case 'gzip-corrupt': {
      const z = Buffer.from(gzipSync(bytes));
      const mid = Math.floor(z.length / 2);
      z[mid] = z[mid]! ^ 0xff;
      return { bytes: z.subarray(0, Math.max(10, z.length - 3)), header: 'gzip' };
    }
    case 'bomb':
      return { bytes: gzipBomb(), header: 'gzip' };
    case 'unknown':
      return { bytes, header: 'zstd' };
    case 'double-gzip':
      return { bytes: gzipSync(gzipSync(bytes)), header: 'gzip, gzip' };
  }
}

async function authorization(
  spec: TokenSpec,
  own: HeldTask | undefined,
  other: HeldTask | undefined,
  secret: string,
): Promise<string | undefined> {
  const key = new TextEncoder().encode(secret);
  const claimsOf = (t: HeldTask | undefined): Record<string, unknown> => {
    if (!t) return { plan: 'none', round: 1, attempt: 1, task: 'none', client: 'fuzz' };
    // The token's payload as issued (whatever claims the server puts in it), read without verifying.
    const payload = t.token.split('.')[1] ?? '';
    try {
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      return {};
    }
  };
  switch (spec.kind) {
    case 'own':
      return own ? `Bearer ${own.token}` : undefined;
    case 'other':
      return other ? `Bearer ${other.token}` : undefined;
    case 'none':
      return undefined;
    case 'garbage':
      return `Bearer ${spec.text}`;
    case 'scheme':
      return spec.header;
    case 'forged': {
      if (!own) return 'Bearer a.b.c';
      const [h, p, s] = own.token.split('.');
      const flipped = (s ?? '').startsWith('A') ? `B${(s ?? '').slice(1)}` : `A${(s ?? '').slice(1)}`;
      return `Bearer ${h}.${p}.${flipped}`;
    }
    case 'alg-none': {
      const h = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
      const p = Buffer.from(JSON.stringify(claimsOf(own))).toString('base64url');
      return `Bearer ${h}.${p}.`;
    }
    case 'expired': {
      const { exp: _exp, iat: _iat, ...claims } = claimsOf(own);
      const jwt = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
        .sign(key);
      return `Bearer ${jwt}`;
    }
    case 'claims': {
      // A correctly signed token whose claims the server never issued.
      const claims = { ...claimsOf(own), exp: Math.floor(Date.now() / 1000) + 3600 } as Record<
        string,
        unknown
      >;
      for (const [k, v] of Object.entries(spec.claims))
        Object.defineProperty(claims, k, { value: v, enumerable: true, writable: true, configurable: true });
      const jwt = await new SignJWT(claims as Record<string, unknown>)
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .sign(key);
      return `Bearer ${jwt}`;
    }
  }
}

/** Turns a drawn upload into a request against the tasks held now. */
export async function materializeUpload(spec: UploadSpec, ctx: UploadContext): Promise<FuzzRequest> {
  const target = ctx.targets[spec.target % ctx.targets.length]!;
  const tasks = target.tasks;
  const own = tasks.length ? tasks[spec.slot % tasks.length] : undefined;
  const others = ctx.targets.flatMap((t) => t.tasks).filter((t) => t !== own);
  const other = others.length ? others[spec.slot % others.length] : undefined;
  const task =
    spec.path.kind === 'own'
      ? (own?.task_id ?? 'no-task')
      : spec.path.kind === 'other'
        ? (other?.task_id ?? 'no-task')
        : encodeURIComponent(spec.path.name).replace(/%25/g, '%');
  const raw = body(spec.body, target.uploadType);
  const { bytes, header } = encode(spec.encoding, raw);
  const headers: Record<string, string> = {};
  if (spec.contentType !== null) headers['content-type'] = spec.contentType;
  if (header) headers['content-encoding'] = header;
  const auth = await authorization(spec.token, own, other, ctx.tokenSecret);
  if (auth !== undefined) headers.authorization = auth;
  const device =
    spec.device === 'own'
      ? own?.device
      : spec.device === 'other'
        ? other?.device
        : spec.device === 'none'
          ? undefined
          : spec.device.text;
  // Header values must be visible ASCII for fetch to send them; other text travels percent-encoded.
  if (device !== undefined)
    headers['x-device-credential'] = /^[!-~]*$/.test(device) ? device : encodeURIComponent(device);
  return {
    method: 'POST',
    path: `/v1/tasks/${task || 'empty'}/result`,
    headers,
    body: bytes,
    label: `upload to ${target.name}: device ${typeof spec.device === 'string' ? spec.device : 'text'}, token ${spec.token.kind}, path ${spec.path.kind}, ${spec.contentType ?? 'no content type'}, encoding ${spec.encoding}, body ${describeBody(spec.body)}`,
  };
}

function describeBody(b: BodySpec): string {
  const text = JSON.stringify(b, (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `<${v.length} bytes>` : v,
  );
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
