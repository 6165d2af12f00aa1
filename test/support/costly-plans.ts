import sumPlan from '../fixtures/sum-plan.json';

/**
 * The two costly plans of issue 7, built on the hand-written sum fixture by replacing its `accumulate`:
 * both type-check and stay under every per-tensor and loop-count limit, so only the cost model stops them.
 */

type Node = { name: string; op: string; args?: string[]; attrs?: Record<string, unknown> };
type PlanJson = Record<string, unknown> & { computations: Record<string, { nodes: Node[] }> };

const F32 = (shape: (number | null)[]) => ({ kind: 'tensor', dtype: 'float32', shape });

/** The fixture's accumulate nodes with `extra` nodes before the final sum, which adds `into` to it. */
function withAccumulate(name: string, extra: Node[], into: string, functions?: Record<string, unknown>) {
  const plan = structuredClone(sumPlan) as unknown as PlanJson;
  plan.name = name;
  const acc = plan.computations.accumulate!;
  const s = acc.nodes.findIndex((n) => n.name === 's');
  acc.nodes.splice(s, 0, ...extra, { name: 'junk', op: 'reduce_sum', args: [into] });
  // The sum also takes the junk (zero), so that nothing the attack builds is dead code.
  acc.nodes.splice(acc.nodes.findIndex((n) => n.name === 's') + 1, 0, {
    name: 's2',
    op: 'add',
    args: ['s', 'junk'],
  });
  const out = acc.nodes.find((n) => n.name === 'out')!;
  out.args = ['s2', 'c'];
  if (functions) plan.functions = { ...(plan.functions as object), ...functions };
  return plan;
}

/** Elements of the memory bomb's constant: the per-tensor limit, 64 MiB of float32. */
export const BOMB_ELEMENTS = 16_777_216;
/** Index of the bomb's constant in its accumulate (after the fixture's six field and const nodes). */
export const BOMB_CONST_INDEX = 6;

/** `accumulate` builds a float32 [16777216] zero constant and chains 100 `add`s of it (~6.8 GB alive). */
export function memoryBombPlan(): PlanJson {
  const nodes: Node[] = [
    { name: 'big', op: 'const', attrs: { dtype: 'float32', shape: [BOMB_ELEMENTS], value: 0 } },
  ];
  for (let i = 1; i <= 100; i++)
    nodes.push({ name: `a${i}`, op: 'add', args: [i === 1 ? 'big' : `a${i - 1}`, 'big'] });
  return withAccumulate('memory-bomb', nodes, 'a100');
}

/** Index of the matmul plan's repeat node in its accumulate. */
export const MATMUL_REPEAT_INDEX = 7;

/** `accumulate` repeats a 2048x2048 matmul 40 times (40 x 2 x 2048^3 = 6.9e11 FLOPs). */
export function matmulLoopPlan(): PlanJson {
  const nodes: Node[] = [
    { name: 'm', op: 'const', attrs: { dtype: 'float32', shape: [2048, 2048], value: 0.001 } },
    { name: 'r', op: 'repeat', args: ['m'], attrs: { fn: 'square', count: 40 } },
  ];
  return withAccumulate('matmul-loop', nodes, 'r', {
    square: {
      parameter: { name: 'x', type: F32([2048, 2048]) },
      nodes: [{ name: 'y', op: 'matmul', args: ['x', 'x'] }],
      result: 'y',
    },
  });
}

/**
 * `initialize` builds the memory bomb before returning the state: it runs in the API process at submit,
 * before anything is stored, so the cost model must refuse it first.
 */
export function initializeBombPlan(): PlanJson {
  const plan = structuredClone(sumPlan) as unknown as PlanJson & { initialize: { nodes: Node[] } };
  plan.name = 'initialize-bomb';
  const nodes: Node[] = [
    { name: 'big', op: 'const', attrs: { dtype: 'float32', shape: [BOMB_ELEMENTS], value: 0 } },
  ];
  for (let i = 1; i <= 100; i++)
    nodes.push({ name: `a${i}`, op: 'add', args: [i === 1 ? 'big' : `a${i - 1}`, 'big'] });
  plan.initialize.nodes.unshift(...nodes);
  return plan;
}

/** Elements of the large update U of `largeUpdatePlan` (within the per-tensor limit). */
export const LARGE_UPDATE_ELEMENTS = 4_000_000;

type SlotJson = { parameter?: { type: unknown }; nodes: Node[] };

/**
 * The fixture with `work` returning U = <sum: float32[LARGE_UPDATE_ELEMENTS]> and `accumulate` declaring
 * the update `<sum: float32[?]>`, folding it into the accumulator through `nodes` (which read the update's
 * tensor `us` and must define `junk`, a float32 scalar). The plan type-checks: only the real size of U makes
 * `accumulate` costly.
 */
function withLargeUpdate(name: string, nodes: Node[], functions: Record<string, unknown>): PlanJson {
  const plan = structuredClone(sumPlan) as unknown as PlanJson;
  plan.name = name;
  const work = plan.computations.work!;
  const u = work.nodes.findIndex((n) => n.name === 'u');
  work.nodes.splice(u, 0, {
    name: 'big',
    op: 'const',
    attrs: { dtype: 'float32', shape: [LARGE_UPDATE_ELEMENTS], value: 0 },
  });
  work.nodes.splice(u + 1, 0, { name: 'bu', op: 'add', args: ['big', 'total'] });
  work.nodes.find((n) => n.name === 'u')!.args = ['bu'];
  const acc = plan.computations.accumulate as SlotJson;
  const update = (acc.parameter!.type as { fields: { type: { fields: { type: unknown }[] } }[] }).fields[1]!;
  update.type.fields[0]!.type = F32([null]);
  const s = acc.nodes.findIndex((n) => n.name === 's');
  acc.nodes.splice(s, 0, ...nodes);
  acc.nodes.find((n) => n.name === 's')!.args = ['as', 'junk'];
  plan.functions = { ...(plan.functions as object), ...functions };
  return plan;
}

/** Index of the first node `largeUpdatePlan` and `reshapeFailurePlan` add to accumulate. */
export const LARGE_UPDATE_NODE_INDEX = 6;

/**
 * `accumulate(p: <A, <sum: float32[?]>>)` with U = float32[4000000] repeats `mul(x, x)` `count` times over
 * the update: `count` x 4e6 FLOPs at the real size, `count` x batch_size if costed at the declared type.
 */
export function largeUpdatePlan(count: number): PlanJson {
  return withLargeUpdate(
    'large-update',
    [
      { name: 'r', op: 'repeat', args: ['us'], attrs: { fn: 'sq', count } },
      { name: 'junk', op: 'reduce_sum', args: ['r'] },
    ],
    {
      sq: {
        parameter: { name: 'x', type: F32([null]) },
        nodes: [{ name: 'y', op: 'mul', args: ['x', 'x'] }],
        result: 'y',
      },
    },
  );
}

/**
 * `accumulate` calls `f(x: float32[?])` with the update float32[4000000]; `f` repeats `mul(x, x)` 1000
 * times, then reshapes x to [3], which fails only at the real shape (at batch_size 2 too, but not at `?`).
 */
export function reshapeFailurePlan(): PlanJson {
  return withLargeUpdate(
    'reshape-failure',
    [
      { name: 'f', op: 'call', args: ['us'], attrs: { fn: 'f' } },
      { name: 'junk', op: 'reduce_sum', args: ['f'] },
    ],
    {
      f: {
        parameter: { name: 'x', type: F32([null]) },
        nodes: [
          { name: 'r', op: 'repeat', args: ['x'], attrs: { fn: 'sq', count: 1000 } },
          { name: 'three', op: 'reshape', args: ['x'], attrs: { shape: [3] } },
          { name: 'y', op: 'add', args: ['three', 'three'] },
          { name: 'z', op: 'reduce_sum', args: ['r'] },
          { name: 'w', op: 'add', args: ['y', 'z'] },
        ],
        result: 'w',
      },
      sq: {
        parameter: { name: 'x', type: F32([null]) },
        nodes: [{ name: 'y', op: 'mul', args: ['x', 'x'] }],
        result: 'y',
      },
    },
  );
}
