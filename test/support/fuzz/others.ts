/**
 * Requests to the other endpoints, cheap enough to send by the thousand: check-ins with hostile bodies and
 * population names, client resources and operator reads with hostile ids and round tags, transitions of
 * plans that do not exist, and paths and methods no route serves.
 */
import fc from 'fast-check';
import { nameArb } from './json-arbitraries';
import { PROTO_NAMES } from './json-mutate';
import type { FuzzRequest } from './plans';

/** Segments worth putting where an id or a name goes. */
function segmentArb(known: readonly string[]): fc.Arbitrary<string> {
  return fc
    .oneof(
      { arbitrary: fc.constantFrom(...known), weight: 3 },
      { arbitrary: nameArb(), weight: 3 },
      {
        arbitrary: fc.constantFrom(
          '0.0',
          '1.1',
          '-1.1',
          '1e9.1',
          '1.1.1',
          '9007199254740993.1',
          '1.',
          '.1',
          'x'.repeat(2000),
          '%2F',
          '%00',
        ),
        weight: 2,
      },
      { arbitrary: fc.string({ maxLength: 40 }), weight: 1 },
    )
    .map((s) => (s.includes('%') ? s : encodeURIComponent(s)) || 'empty');
}

/**
 * Requests to endpoints other than plan submission and uploads. `known` holds real plan ids and
 * population names, so that some requests reach real records; check-ins use VOID or unknown populations
 * unless `known` names one.
 */
export function otherRequestArb(known: readonly string[]): fc.Arbitrary<FuzzRequest> {
  const seg = segmentArb(known.length ? known : ['fuzz-void']);
  const checkinBody = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc
      .record(
        {
          client_id: fc.oneof(
            fc.string(),
            fc.constantFrom(...PROTO_NAMES, '', 'x'.repeat(300)),
            fc.jsonValue(),
          ),
        },
        { requiredKeys: [] },
      )
      .map((v) => JSON.stringify(v)),
    fc.constantFrom('', '{', '[]', 'null', '{"client_id":' + '['.repeat(3000) + ']'.repeat(3000) + '}'),
  );
  const checkin = fc
    .tuple(seg, checkinBody, fc.constantFrom('application/json', 'text/plain', 'application/json', ''))
    .map(([pop, body, type]): FuzzRequest => ({
      method: 'POST',
      path: `/v1/populations/${pop}/checkin`,
      headers: type ? { 'content-type': type } : {},
      body,
      label: `check-in to ${pop.slice(0, 60)}`,
    }));
  const get = (path: string, label: string, operator: boolean): FuzzRequest => ({
    method: 'GET',
    path,
    headers: {},
    operator,
    label,
  });
  const resource = fc
    .tuple(seg, seg, fc.constantFrom('client-plan', 'broadcast', 'rounds', 'state', ''))
    .map(([id, tag, what]) => {
      switch (what) {
        case 'client-plan':
          return get(`/v1/plans/${id}/client-plan`, `client plan of ${id.slice(0, 60)}`, false);
        case 'broadcast':
          return get(
            `/v1/plans/${id}/rounds/${tag}/broadcast`,
            `broadcast ${tag.slice(0, 30)} of ${id.slice(0, 60)}`,
            false,
          );
        case '':
          return get(`/v1/plans/${id}`, `plan ${id.slice(0, 60)}`, true);
        default:
          return get(`/v1/plans/${id}/${what}`, `${what} of ${id.slice(0, 60)}`, true);
      }
    });
  const transition = fc
    .tuple(seg, fc.constantFrom('pause', 'resume', 'cancel'))
    .map(([id, action]): FuzzRequest => ({
      method: 'POST',
      path: `/v1/plans/${id}/${action}`,
      headers: {},
      operator: true,
      label: `${action} ${id.slice(0, 60)}`,
    }));
  const stray = fc
    .tuple(fc.constantFrom<'GET' | 'POST'>('GET', 'POST'), fc.array(seg, { minLength: 1, maxLength: 4 }))
    .map(([method, parts]): FuzzRequest => ({
      method,
      path: `/${parts.join('/')}`,
      headers: {},
      label: `${method} /${parts.join('/').slice(0, 80)}`,
    }));
  return fc.oneof(
    { arbitrary: checkin, weight: 4 },
    { arbitrary: resource, weight: 4 },
    // Only ids that do not exist are transitioned: the driver never lets the fuzz cancel its own targets.
    { arbitrary: transition.filter((r) => !known.some((k) => r.path.includes(k))), weight: 1 },
    { arbitrary: stray, weight: 1 },
  );
}
