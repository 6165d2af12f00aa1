/**
 * Uploads for the fuzz. fast-check draws an abstract {@link UploadSpec} (which target plan, which token
 * trick, which body damage); {@link materializeUpload} turns it into bytes against the tasks the driver holds
 * at that moment, so that most uploads carry a real task token and get past the token check into the bundle
 * decoder, the type check and the store.
 */
import fc from 'fast-check';
import type { TffType } from '../../../src/compute/types';
import { bodyArb, encodingArb, type BodySpec, type EncodingSpec } from './bundle-damage';
import { body, encode } from './bundle-writer';
import { nameArb } from './json-arbitraries';
import type { FuzzRequest } from './plans';
import { authorization, tokenArb, type TokenSpec } from './upload-tokens';

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

type PathSpec = { kind: 'own' } | { kind: 'other' } | { kind: 'name'; name: string };

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
