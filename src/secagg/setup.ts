/**
 * What a round attempt running SecAgg fixes when it opens (docs/server.md, "Secure aggregation"): the
 * protocol, a session id bound into every key the clients derive, the seed of the secret-sharing graph, the
 * masking moduli of every secure-sum tensor, and the graph settings. Stored with the attempt (open-round's
 * `secagg` field) and read back by the API and the finalizer, which derive the same graph from it.
 */
import { randomBytes } from 'node:crypto';
import { AppError } from '../errors';
import type { Plan, SecureAggregation } from '../generated/plan';
import type { MaskingModuli, SecureParams } from '../rounds/form-steps';
import { hararyGraph, type SecretSharingGraph } from './graph';
import { maskingModuli } from './masks';
import { completeGraph, secAggParameters, type SecAggParams, type ThreatModel } from './params';

/** The schema's defaults of `schedule.secure_aggregation`. */
const DEFAULTS = {
  dropout_rate: 0.33,
  adversarial_rate: 0.05,
  adversary: 'curious',
  sharing_timeout_s: 60,
  unmasking_timeout_s: 60,
} as const;

/** An attempt's SecAgg setup as stored (JSON). */
export interface SecAggSetup {
  readonly protocol: 'secagg+' | 'secagg';
  /** 32 random bytes, base64url: the HKDF salt of every key of the attempt. */
  readonly session: string;
  /** 32 random bytes, base64url: the seed of the graph's node permutation. */
  readonly graph_seed: string;
  /** The masking modulus of every tensor of V1, V2, V3 ... */
  readonly moduli: MaskingModuli;
  /** ... derived from these (the round's secure-sum parameters and selection target), which clients get. */
  readonly params: SecureParams;
  readonly n_max: number;
  readonly dropout_rate: number;
  readonly adversarial_rate: number;
  readonly adversary: 'curious' | 'semi-malicious';
  /** Explicit graph parameters, when the plan gives them. */
  readonly degree?: number;
  readonly threshold?: number;
}

/** The plan's setting when its secure sums are masked; undefined for 'none' or no secure sums. */
export function secAggSetting(
  plan: Plan,
): (SecureAggregation & { protocol: 'secagg+' | 'secagg' }) | undefined {
  const s = plan.schedule.secure_aggregation;
  return s && s.protocol !== 'none' ? { ...s, protocol: s.protocol } : undefined;
}

/** The plan's sharing and unmasking timeouts in ms (defaults as documented). */
export function secAggTimeoutsMs(plan: Plan): { readonly sharing: number; readonly unmasking: number } {
  const s = plan.schedule.secure_aggregation;
  return {
    sharing: Math.round((s?.sharing_timeout_s ?? DEFAULTS.sharing_timeout_s) * 1000),
    unmasking: Math.round((s?.unmasking_timeout_s ?? DEFAULTS.unmasking_timeout_s) * 1000),
  };
}

/** How long past an attempt's own deadlines its exchange's keys live, should nothing delete them. */
const EXCHANGE_GRACE_MS = 24 * 3600_000;

/**
 * What opening an attempt stores of its setup: the setup, the timeouts, and when the exchange's keys expire
 * (a day after the unmasking deadline could be at the latest; a pause longer than that loses the exchange,
 * and the round then fails when it is finalized).
 */
export function secAggStored(setup: SecAggSetup, plan: Plan, reportingDeadline: number) {
  const timeoutsMs = secAggTimeoutsMs(plan);
  return { setup, timeoutsMs, expiresAt: reportingDeadline + timeoutsMs.unmasking + EXCHANGE_GRACE_MS };
}

/**
 * A fresh setup for an attempt of a plan that masks its secure sums, or undefined when it does not. Throws
 * AppError PLAN_OUT_OF_BOUNDS when a masking modulus would pass 2^52 (bitwidth or max_input too large for
 * the selection target).
 */
export function newSecAggSetup(
  plan: Plan,
  params: SecureParams,
  selectionTarget: number,
): SecAggSetup | undefined {
  const setting = secAggSetting(plan);
  if (!setting) return undefined;
  let moduli: MaskingModuli;
  try {
    moduli = maskingModuli(params, selectionTarget);
  } catch (e) {
    throw new AppError('PLAN_OUT_OF_BOUNDS', `secure aggregation: ${(e as Error).message}`);
  }
  return {
    protocol: setting.protocol,
    session: randomBytes(32).toString('base64url'),
    graph_seed: randomBytes(32).toString('base64url'),
    moduli,
    params,
    n_max: selectionTarget,
    dropout_rate: setting.dropout_rate ?? DEFAULTS.dropout_rate,
    adversarial_rate: setting.adversarial_rate ?? DEFAULTS.adversarial_rate,
    adversary: setting.adversary ?? DEFAULTS.adversary,
    ...(setting.degree === undefined ? {} : { degree: setting.degree }),
    ...(setting.threshold === undefined ? {} : { threshold: setting.threshold }),
  };
}

/** The degree and threshold of a cohort of n clients under a setup. */
export function graphParameters(setup: SecAggSetup, n: number): SecAggParams {
  const threat: ThreatModel = {
    adversarialRate: setup.adversarial_rate,
    dropoutRate: setup.dropout_rate,
    adversaryClass: setup.adversary,
  };
  if (setup.protocol === 'secagg') return completeGraph(n, threat);
  if (setup.degree !== undefined && setup.threshold !== undefined) {
    // A cohort smaller than the plan's neighbourhood is a complete graph; the threshold cannot pass it.
    return setup.degree >= n
      ? secAggParameters(n, { degree: n, threshold: Math.min(setup.threshold, n) })
      : secAggParameters(n, { degree: setup.degree, threshold: setup.threshold });
  }
  return secAggParameters(n, threat);
}

/** Graphs by session and cohort size: every request of a round's exchange asks for the same one. */
const graphs = new Map<string, SecretSharingGraph>();
const GRAPHS_KEPT = 256;

/** The secret-sharing graph of a cohort of n clients under a setup (the same in every process). */
export function cohortGraph(
  setup: SecAggSetup,
  n: number,
): { readonly graph: SecretSharingGraph; readonly threshold: number } {
  const key = `${setup.session}:${n}`;
  const { degree, threshold } = graphParameters(setup, n);
  let graph = graphs.get(key);
  if (!graph) {
    graph = hararyGraph(n, degree, new Uint8Array(Buffer.from(setup.graph_seed, 'base64url')));
    // Oldest first out: rounds end, and a map keeps insertion order.
    if (graphs.size >= GRAPHS_KEPT) graphs.delete(graphs.keys().next().value!);
    graphs.set(key, graph);
  }
  return { graph, threshold };
}
