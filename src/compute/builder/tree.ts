import { formatType, type Dtype, type TffType } from '../types';
import type { BaseBuilder, Operand } from './core';
import { BuildError, type Handle } from './handle';

/**
 * What the tree helpers use of the builder they belong to (ComputationBuilder, which owns them): named here
 * so that this file need not import the class that imports it.
 */
export interface TreeHost extends Pick<BaseBuilder, 'label' | 'const' | 'struct' | 'field' | 'scalar'> {
  add(a: Operand, b: Operand): Handle;
  sub(a: Operand, b: Operand): Handle;
  mul(a: Operand, b: Operand): Handle;
  div(a: Operand, b: Operand): Handle;
  cast(x: Handle, dtype: Dtype): Handle;
  zerosLike(x: Handle): Handle;
  reduceSum(x: Handle): Handle;
  square(x: Handle): Handle;
}

/**
 * Elementwise helpers over structs of tensors ("trees", as in `tf.nest`), the shape of model weights and
 * optimizer slots. Each emits one op node per tensor leaf (plus the field reads it needs) and one struct
 * node per struct level, keeping the field names, so accumulate, merge and update stay a line each.
 */
export class TreeOps {
  constructor(private readonly b: TreeHost) {}

  /** Applies `f` to every tensor leaf of `s` and rebuilds the struct around the results. */
  map(s: Handle, f: (leaf: Handle, path: readonly string[]) => Handle): Handle {
    return this.zip([s], ([leaf], path) => f(leaf!, path), 'tree.map');
  }

  /**
   * Applies `f` to the corresponding leaves of several trees of the same structure (same field names and
   * counts), e.g. weights, gradients and optimizer slots.
   */
  zip(
    trees: readonly Handle[],
    f: (leaves: Handle[], path: readonly string[]) => Handle,
    what = 'tree.zip',
  ): Handle {
    if (trees.length === 0) throw new BuildError(`${this.b.label}: ${what} needs at least one tree`);
    const first = trees[0]!;
    for (const t of trees.slice(1)) {
      const why = structureDiff(first.type, t.type, '');
      if (why) {
        throw new BuildError(
          `${this.b.label}: ${what}: "${first.name}" ${formatType(first.type)} and "${t.name}" ${formatType(t.type)} differ ${why}`,
        );
      }
    }
    return this.walk(trees, f, []);
  }

  /** Leafwise `a + b`. */
  add(a: Handle, b: Handle): Handle {
    return this.zip([a, b], ([x, y]) => this.b.add(x!, y!), 'tree.add');
  }

  /** Leafwise `a - b`. */
  sub(a: Handle, b: Handle): Handle {
    return this.zip([a, b], ([x, y]) => this.b.sub(x!, y!), 'tree.sub');
  }

  /** Leafwise `a * b`. */
  mul(a: Handle, b: Handle): Handle {
    return this.zip([a, b], ([x, y]) => this.b.mul(x!, y!), 'tree.mul');
  }

  /** Every leaf times one scalar (a handle or a number). */
  scale(s: Handle, k: Operand): Handle {
    return this.map(s, (x) => this.b.mul(x, k));
  }

  /** Every leaf divided by one scalar (a handle or a number). */
  div(s: Handle, k: Operand): Handle {
    return this.map(s, (x) => this.b.div(x, k));
  }

  /** Every leaf cast to `dtype`. */
  cast(s: Handle, dtype: Dtype): Handle {
    return this.map(s, (x) => this.b.cast(x, dtype));
  }

  /** Zeros shaped like `s` (computed from the value, so unknown dimensions are fine). */
  zerosLike(s: Handle): Handle {
    return this.map(s, (x) => this.b.zerosLike(x));
  }

  /** Constants filling a struct-of-tensors type (no unknown dimensions), e.g. the accumulator in `zero`. */
  fill(type: TffType, value: number | boolean): Handle {
    switch (type.kind) {
      case 'tensor':
        return this.b.const(type.dtype, type.shape, value);
      case 'struct':
        return this.b.struct(type.fields.map((f) => [f.name, this.fill(f.type, value)] as const));
      case 'sequence':
        throw new BuildError(
          `${this.b.label}: tree.fill: a sequence ${formatType(type)} has no constant value`,
        );
    }
  }

  /** Zeros of a struct-of-tensors type. */
  zeros(type: TffType): Handle {
    return this.fill(type, type.kind === 'tensor' && type.dtype === 'bool' ? false : 0);
  }

  /** The tensor leaves of `s`, depth first (the order of `tensorLeaves`). */
  leaves(s: Handle): Handle[] {
    const t = s.type;
    if (t.kind === 'tensor') return [s];
    if (t.kind === 'sequence')
      throw new BuildError(
        `${this.b.label}: tree helpers do not apply to the sequence "${s.name}" ${formatType(t)}`,
      );
    return t.fields.flatMap((f, i) => this.leaves(this.b.field(s, f.name ?? i)));
  }

  /** The sum of the squares of every element of every leaf (float32 scalar), e.g. for a global L2 norm. */
  sumOfSquares(s: Handle): Handle {
    const parts = this.leaves(s).map((x) => this.b.reduceSum(this.b.square(x)));
    if (parts.length === 0) return this.b.scalar(0);
    return parts.slice(1).reduce((acc, p) => this.b.add(acc, p), parts[0]!);
  }

  private walk(
    trees: readonly Handle[],
    f: (leaves: Handle[], path: readonly string[]) => Handle,
    path: string[],
  ): Handle {
    const t = trees[0]!.type;
    if (t.kind === 'tensor') return f([...trees], path);
    if (t.kind === 'sequence')
      throw new BuildError(
        `${this.b.label}: tree helpers do not apply to the sequence "${trees[0]!.name}" ${formatType(t)}`,
      );
    // A leaf passed through unchanged would alias a field node; that is fine, nodes are values.
    return this.b.struct(
      t.fields.map((fld, i) => {
        const key = fld.name ?? i;
        const sub = trees.map((h) => this.b.field(h, key));
        return [fld.name, this.walk(sub, f, [...path, String(key)])] as const;
      }),
    );
  }
}

/** Where two types stop having the same tree structure (kinds, field counts and names), or null. */
function structureDiff(a: TffType, b: TffType, path: string): string | null {
  const at = path ? `at ${path}` : 'at the top';
  if (a.kind !== b.kind) return `${at}: ${a.kind} vs ${b.kind}`;
  if (a.kind === 'struct' && b.kind === 'struct') {
    if (a.fields.length !== b.fields.length) return `${at}: ${a.fields.length} vs ${b.fields.length} fields`;
    for (let i = 0; i < a.fields.length; i++) {
      const fa = a.fields[i]!;
      const fb = b.fields[i]!;
      if (fa.name !== fb.name) return `${at}: field ${i} is "${fa.name ?? ''}" vs "${fb.name ?? ''}"`;
      const inner = structureDiff(fa.type, fb.type, path ? `${path}.${fa.name ?? i}` : String(fa.name ?? i));
      if (inner) return inner;
    }
  }
  return null;
}
