/**
 * Task tokens for the upload fuzz (and session tokens for the session fuzz): the real one, another task's, none, garbage, other schemes, a forged
 * signature, `alg: none`, and tokens correctly signed with the server's TOKEN_SECRET but expired or with
 * claims the server never issued.
 */
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { PROTO_NAMES, type Json } from './json-mutate';
import type { HeldTask } from './uploads';

/** Which token an upload presents, abstractly. */
export type TokenSpec =
  | { kind: 'own' | 'other' | 'none' | 'forged' | 'alg-none' | 'expired' }
  | { kind: 'garbage'; text: string }
  | { kind: 'scheme'; header: string }
  | { kind: 'claims'; claims: Record<string, Json> };

const claimValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(0, -1, 1.5, 2 ** 53, 1e300, '1', '', null, true, [], {}, ...PROTO_NAMES),
  fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json>,
);

/** The claims of a task token, which forged tokens set to hostile values. */
const TASK_CLAIMS = ['plan', 'round', 'attempt', 'task', 'client', 'device', 'exp'];

/** Token tricks, weighted towards the real token; `claimNames` are the claims hostile tokens set. */
export function tokenArb(claimNames: readonly string[] = TASK_CLAIMS): fc.Arbitrary<TokenSpec> {
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
        .dictionary(fc.constantFrom(...claimNames, ...PROTO_NAMES), claimValue, {
          minKeys: 1,
          maxKeys: 3,
        })
        .map((claims) => ({ kind: 'claims' as const, claims: claims as Record<string, Json> })),
      weight: 4,
    },
  );
}

/** The Authorization header of a drawn token (a task's or a session's), or undefined for none. */
export async function authorization(
  spec: TokenSpec,
  own: Pick<HeldTask, 'token'> | undefined,
  other: Pick<HeldTask, 'token'> | undefined,
  secret: string,
): Promise<string | undefined> {
  const key = new TextEncoder().encode(secret);
  const claimsOf = (t: Pick<HeldTask, 'token'> | undefined): Record<string, unknown> => {
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
