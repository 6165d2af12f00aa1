import { createHash } from 'node:crypto';
import sumPlan from '../../test/fixtures/sum-plan.json';
import { DEFAULT_LIMITS } from '../compute/limits';
import type { Computation } from '../generated/computation';
import { checkPlan } from '../plan/validate';
import type { RoundStore } from '../store/types';
import { CLIENT_PLAN_FORMAT, loadPlan, reachableFunctions, StorePlanCache } from './plan-cache';

const fn = (calls: string[]): Computation => ({
  parameter: { name: 'x', type: { kind: 'tensor', dtype: 'float32', shape: [] } },
  nodes: calls.map((c, i) => ({ name: `n${i}`, op: 'call', args: ['x'], attrs: { fn: c } })),
  result: 'x',
});

describe('plan cache', () => {
  test('reachableFunctions follows calls transitively and leaves the rest out', () => {
    const functions = { a: fn(['b']), b: fn(['b', 'c']), c: fn([]), unused: fn(['a']) };
    expect(Object.keys(reachableFunctions(fn(['a']), functions))).toEqual(['a', 'b', 'c']);
    expect(reachableFunctions(fn([]), functions)).toEqual({});
  });

  test('the client plan holds work, its functions, the data spec and the two bundle types', () => {
    const loaded = loadPlan('p0123456789ab', checkPlan(sumPlan));
    const doc = JSON.parse(loaded.clientPlan.json);
    expect(doc.format).toBe(CLIENT_PLAN_FORMAT);
    expect(doc.plan_id).toBe('p0123456789ab');
    expect(doc.work).toEqual(sumPlan.computations.work);
    expect(Object.keys(doc.functions)).toEqual(['add_batch']);
    expect(doc.client_data).toEqual(sumPlan.client_data);
    expect(doc.broadcast_type).toEqual({ kind: 'struct', fields: [] });
    expect(doc.upload_type).toEqual(loaded.uploadType);
    expect(loaded.uploadType).toMatchObject({ kind: 'struct', fields: [{}, {}, {}, {}] });
    const sha = createHash('sha256').update(loaded.clientPlan.json).digest('hex');
    expect(loaded.clientPlan.etag).toBe(`"${sha}"`);
  });

  test('StorePlanCache checks a plan once and does not remember a miss', async () => {
    const json = new Map<string, string>();
    let reads = 0;
    const store = {
      getPlanJson: async (id: string) => {
        reads += 1;
        return json.get(id);
      },
    } as unknown as RoundStore;
    const cache = new StorePlanCache(store, DEFAULT_LIMITS);
    expect(await cache.get('p0123456789ab')).toBeUndefined();
    json.set('p0123456789ab', JSON.stringify(sumPlan));
    const [a, b] = await Promise.all([cache.get('p0123456789ab'), cache.get('p0123456789ab')]);
    expect(a).toBeDefined();
    expect(b).toBe(a);
    expect(await cache.get('p0123456789ab')).toBe(a);
    expect(reads).toBe(2);
  });

  test('StorePlanCache keeps at most its size bound of plans and forgets a deleted plan', async () => {
    let reads = 0;
    const store = {
      getPlanJson: async () => {
        reads += 1;
        return JSON.stringify(sumPlan);
      },
    } as unknown as RoundStore;
    const cache = new StorePlanCache(store, DEFAULT_LIMITS, 2);
    const [a, b] = ['p000000000001', 'p000000000002'];
    const first = await cache.get(a);
    await cache.get(b);
    await cache.get(a); // a is now more recent than b
    await cache.get('p000000000003'); // b leaves
    expect(reads).toBe(3);
    expect(await cache.get(a)).toBe(first);
    expect(reads).toBe(3);
    await cache.get(b);
    expect(reads).toBe(4);
    cache.forget(a);
    expect(await cache.get(a)).not.toBe(first);
    expect(reads).toBe(5);
  });
});
