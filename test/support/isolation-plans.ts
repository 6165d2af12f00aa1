import { tensorType } from '../../src/compute/types';
import { vectorSumPlan } from './plans';

/** A plan document renamed (test fault injection reads the name: `fault-<kind>-<task>`). */
export function named(plan: Record<string, unknown>, name: string): Record<string, unknown> {
  return { ...plan, name };
}

/**
 * {@link vectorSumPlan} whose server state also keeps the running total `w` (float32[k]) of every round's
 * summed deltas: `w' = w + sum of deltas`. Two clients uploading 3.4e38 make `w'` +Inf, which the finalizer
 * must refuse (the round fails, `w` stays).
 */
export function stateSumPlan(k: number, schedule: Record<string, number>): Record<string, unknown> {
  const plan = vectorSumPlan(k, schedule);
  const oldState = JSON.stringify({
    kind: 'struct',
    fields: [{ name: 'rounds', type: tensorType('int32', []) }],
  });
  const newState = {
    kind: 'struct',
    fields: [
      { name: 'rounds', type: tensorType('int32', []) },
      { name: 'w', type: tensorType('float32', [k]) },
    ],
  };
  // Every occurrence of the old state type (prepare's and update's parameters) becomes the new one.
  const swap = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(swap);
    if (v && typeof v === 'object') {
      if (JSON.stringify(v) === oldState) return newState;
      return Object.fromEntries(Object.entries(v).map(([key, x]) => [key, swap(x)]));
    }
    return v;
  };
  const out = swap(plan) as Record<string, unknown> & {
    initialize: { nodes: unknown[] };
    computations: { update: { nodes: Array<{ name: string }> } };
  };
  out.initialize = {
    nodes: [
      { name: 'z', op: 'const', attrs: { dtype: 'int32', shape: [], value: 0 } },
      { name: 'w', op: 'const', attrs: { dtype: 'float32', shape: [k], value: 0 } },
      { name: 's', op: 'struct', args: ['z', 'w'], attrs: { names: ['rounds', 'w'] } },
    ],
  } as never;
  (out.initialize as unknown as { result: string }).result = 's';
  const update = out.computations.update.nodes.filter(
    (node) => node.name !== 's2' && node.name !== 'x' && node.name !== 'out',
  );
  out.computations.update.nodes = [
    ...update,
    { name: 'sw', op: 'field', args: ['s'], attrs: { name: 'w' } },
    { name: 'w2', op: 'add', args: ['sw', 'total'] },
    { name: 's2', op: 'struct', args: ['next', 'w2'], attrs: { names: ['rounds', 'w'] } },
    { name: 'x', op: 'struct', args: ['sum', 'count'], attrs: { names: ['total', 'count'] } },
    { name: 'out', op: 'struct', args: ['s2', 'x'] },
  ] as never;
  return { ...out, name: `state-sum-${k}` };
}
