import { AppError } from '../errors';

/** Which of TFF's three secure sums a set of values goes through. */
export type SecureSumKind = 'bitwidth' | 'max_input' | 'modulus';

/**
 * What a `SecureSum` adds: one of TFF's three kinds in the clear, or `masked`: SecAgg residues modulo each
 * tensor's masking modulus (at most 2^52), whose sum only the finalizer unmasks (src/secagg).
 */
export type SumKind = SecureSumKind | 'masked';

/** The largest masking modulus: the sum of two residues (< 2^53) stays exact in float64. */
const MAX_MASKING_MODULUS = 2 ** 52;

/** The form slot whose computation gives each kind's parameters. */
export const SECURE_SUM_SLOTS = {
  bitwidth: 'secure_sum_bitwidth',
  max_input: 'secure_sum_max_input',
  modulus: 'secure_modular_sum_modulus',
} as const satisfies Record<SecureSumKind, string>;

const INT32_MAX = 2 ** 31 - 1;

/** Checks parameters from the plan's secure-sum computation; they are plan errors, not client errors. */
export function checkSecureSumParams(kind: SumKind, params: readonly number[]): void {
  const [lo, hi] =
    kind === 'bitwidth'
      ? [1, 31]
      : kind === 'max_input'
        ? [0, INT32_MAX]
        : kind === 'modulus'
          ? [1, INT32_MAX]
          : [2, MAX_MASKING_MODULUS];
  params.forEach((p, i) => {
    if (!Number.isInteger(p) || p < lo || p > hi) {
      const what = kind === 'masked' ? 'the masking modulus' : SECURE_SUM_SLOTS[kind];
      throw new AppError(
        'EVAL_ERROR',
        `${what} gave ${p} for tensor ${i}; it must be an integer in [${lo}, ${hi}]`,
      );
    }
  });
}

/**
 * Sums one kind of secure-sum update over clients with TFF's semantics: `bitwidth` takes values in
 * [0, 2^bitwidth - 1] and `max_input` values in [0, max_input], and rejects a client with any value outside
 * (TFF fails such a client); `modulus` wraps each value into [0, modulus - 1] and sums modulo the modulus.
 * Sums are exact (float64 holds integers up to 2^53); a sum that no longer fits the int32 result fails.
 * A client's values are checked completely before any is added, so a rejected client changes nothing.
 */
export class SecureSum {
  private readonly sums: Float64Array[];
  private count = 0;

  constructor(
    readonly kind: SumKind,
    /** One parameter per tensor of the update, in tensorLeaves order (masked: its masking modulus). */
    private readonly params: readonly number[],
    sizes: readonly number[],
  ) {
    checkSecureSumParams(kind, params);
    if (params.length !== sizes.length)
      throw new Error(`${params.length} parameters for ${sizes.length} tensors`);
    this.sums = sizes.map((n) => new Float64Array(n));
  }

  /**
   * Rebuilds a partial sum saved by a worker (`sums()` and `clients`), e.g. from a committed partial. The
   * sums are taken as they are (copied): they were checked when each client was added.
   */
  static restore(
    kind: SumKind,
    params: readonly number[],
    sums: readonly ArrayLike<number>[],
    clients: number,
  ): SecureSum {
    const out = new SecureSum(
      kind,
      params,
      sums.map((s) => s.length),
    );
    sums.forEach((s, leaf) => out.sums[leaf]!.set(s));
    if (!Number.isInteger(clients) || clients < 0) throw new Error(`bad client count ${clients}`);
    out.count = clients;
    return out;
  }

  /** The number of clients added. */
  get clients(): number {
    return this.count;
  }

  /** The parameters, one per tensor. */
  get parameters(): readonly number[] {
    return this.params;
  }

  /** The exact running sums (non-negative integers held in float64), one array per tensor; read only. */
  partialSums(): readonly Float64Array[] {
    return this.sums;
  }

  /** Throws AppError SECURE_SUM_OUT_OF_RANGE naming the tensor and element when a value is not allowed. */
  check(values: readonly ArrayLike<number>[]): void {
    if (this.kind === 'modulus') return;
    if (this.kind === 'masked') {
      values.forEach((v, leaf) => {
        const m = this.params[leaf]!;
        for (let i = 0; i < v.length; i++) {
          const x = v[i]!;
          if (!(Number.isInteger(x) && x >= 0 && x < m)) {
            throw new AppError(
              'SECURE_SUM_OUT_OF_RANGE',
              `masked value ${x} at tensor ${leaf}, element ${i} is not a residue below its masking modulus ${m}`,
            );
          }
        }
      });
      return;
    }
    values.forEach((v, leaf) => {
      const max = this.kind === 'bitwidth' ? 2 ** this.params[leaf]! - 1 : this.params[leaf]!;
      for (let i = 0; i < v.length; i++) {
        const x = v[i]!;
        if (!(x >= 0 && x <= max)) {
          const what = this.kind === 'bitwidth' ? `bitwidth ${this.params[leaf]}` : `max_input ${max}`;
          throw new AppError(
            'SECURE_SUM_OUT_OF_RANGE',
            `secure-sum value ${x} at tensor ${leaf}, element ${i} is outside [0, ${max}] (${what})`,
          );
        }
      }
    });
  }

  /** Adds one client's values (one array per tensor). */
  add(values: readonly ArrayLike<number>[]): void {
    if (values.length !== this.sums.length)
      throw new Error(`${values.length} tensors, expected ${this.sums.length}`);
    this.check(values);
    values.forEach((v, leaf) => {
      const sum = this.sums[leaf]!;
      if (v.length !== sum.length)
        throw new Error(`tensor ${leaf} has ${v.length} elements, expected ${sum.length}`);
      if (this.kind === 'modulus') {
        const m = this.params[leaf]!;
        for (let i = 0; i < v.length; i++) sum[i] = (sum[i]! + (((v[i]! % m) + m) % m)) % m;
      } else if (this.kind === 'masked') {
        // Both residues are below m <= 2^52, so the sum is exact before it is reduced.
        const m = this.params[leaf]!;
        for (let i = 0; i < v.length; i++) sum[i] = (sum[i]! + v[i]!) % m;
      } else {
        for (let i = 0; i < v.length; i++) sum[i] = sum[i]! + v[i]!;
      }
    });
    this.count += 1;
  }

  /** Adds another partial sum of the same kind (sums from different workers). */
  merge(other: SecureSum): void {
    if (other.kind !== this.kind || other.sums.length !== this.sums.length)
      throw new Error(
        `cannot merge a ${other.kind} sum of ${other.sums.length} tensors into a ${this.kind} sum of ${this.sums.length}`,
      );
    other.sums.forEach((s, leaf) => {
      const sum = this.sums[leaf]!;
      const m = this.params[leaf]!;
      for (let i = 0; i < s.length; i++)
        sum[i] = this.kind === 'modulus' || this.kind === 'masked' ? (sum[i]! + s[i]!) % m : sum[i]! + s[i]!;
    });
    this.count += other.count;
  }

  /** The sums as int32 arrays, one per tensor; a masked sum has no result until it is unmasked. */
  result(): Int32Array[] {
    if (this.kind === 'masked') throw new Error('a masked sum must be unmasked before it is released');
    return this.sums.map((s, leaf) => {
      const out = new Int32Array(s.length);
      for (let i = 0; i < s.length; i++) {
        if (s[i]! > INT32_MAX) {
          throw new AppError(
            'EVAL_ERROR',
            `secure sum of tensor ${leaf}, element ${i} is ${s[i]}, beyond int32; lower the bitwidth or max_input`,
          );
        }
        out[i] = s[i]!;
      }
      return out;
    });
  }
}
