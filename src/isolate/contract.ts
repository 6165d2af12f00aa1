import type { DpRoundResult } from '../dp/mechanism';
/**
 * The boundary between the round server and plan code (docs/server.md, "Isolation of plan code"): every
 * evaluation of a plan's computations on the server is one of four pure tasks over bytes, and every server
 * computation of a stateful program one more (`callProgram`). The server runs them in disposable isolates
 * (`IsolatePool`); the local runner, the simulator and tests may run the same tasks in-process
 * (`LocalEvaluator`). No Node-only API here: the contract is shared with the browser build.
 */
import type { JsonValue } from '../compute/value-json';
import { AppError } from '../errors';
import type { CheckedPlan } from '../plan/validate';
import type { MaskingModuli, SecureParams } from '../rounds/form-steps';
import type { UnmaskInput } from '../secagg/protocol-server';
import type { CheckedProgram } from '../stateful/check';
import { backendFault } from './backend-fault';

/**
 * A plan as a task names it. Isolates check the document once and keep the checked plan by `id`
 * (plans are immutable once stored); `checked`, when given, spares an in-process evaluator the check.
 */
export interface PlanRef {
  readonly id: string;
  /** The plan document (JSON-serialisable), as stored. */
  readonly document: unknown;
  readonly checked?: CheckedPlan;
}

/** What opening a round attempt computes from the server state. */
export interface RoundMaterials {
  /** C = prepare(S), as a bundle of type C. */
  readonly broadcast: Uint8Array;
  /** The secure-sum parameters, checked to be in range. */
  readonly secureParams: SecureParams;
}

/** One queued upload to fold; `bytes` undefined when the upload is gone (evicted or lost). */
export interface UploadInput {
  readonly task: string;
  readonly bytes: Uint8Array | undefined;
}

/** A batch of one round attempt's uploads to fold into a worker's partial. */
export interface FoldTask {
  readonly round: number;
  readonly secureParams: SecureParams;
  /**
   * The round's masking moduli when it runs SecAgg: uploads carry masked residues (int32 [2, n] lanes) in
   * place of V1..V3, summed modulo these.
   */
  readonly masking?: MaskingModuli;
  /** The partial to fold into (`encodePartial` bytes); undefined for `zero` with empty secure sums. */
  readonly partial: Uint8Array | undefined;
  readonly uploads: readonly UploadInput[];
}

/** What folding a batch produced: the new partial and what happened to each upload. */
export interface FoldResult {
  /** The new partial (`encodePartial` bytes): the old one plus every accepted upload of the batch. */
  readonly partial: Uint8Array;
  /** Uploads inside the new partial. */
  readonly clients: number;
  /** Uploads whose content failed (type, finiteness, secure-sum range, an `accumulate` error). */
  readonly rejected: readonly string[];
  /** Tasks whose upload is gone (no bytes): covered without effect. */
  readonly gone: readonly string[];
}

/** Everything finalize needs of a closed round attempt. */
export interface FinalizeTask {
  readonly round: number;
  readonly secureParams: SecureParams;
  /** Every committed partial, in the order to merge them. */
  readonly partials: readonly Uint8Array[];
  /** The server state S before the round (bundle of type S). */
  readonly state: Uint8Array;
  /** min_clients_in_aggregate of the attempt. */
  readonly minAggregate: number;
  /**
   * SecAgg: what takes the masks off the masked sums (src/secagg/protocol-server.ts, `unmaskSums`): the
   * unmasking plan, the session, the cohort's mask keys, the R3 shares by the client they rebuild, and the
   * masking moduli.
   */
  readonly unmask?: Omit<UnmaskInput, 'maskedSums'>;
  /** A dp plan's clip for this round (src/dp/mechanism.ts). */
  readonly dpClip?: number;
}

/** A finalized round: the next state and the output, or why the round fails (nothing is released then). */
export type FinalizeResult =
  | {
      readonly ok: true;
      /** S' as a bundle; every float in it is finite. */
      readonly state: Uint8Array;
      readonly output: JsonValue;
      /** Uploads inside the aggregate. */
      readonly clients: number;
      /** A dp plan's round: the clip it used and the next round's. */
      readonly dp?: DpRoundResult;
    }
  | { readonly ok: false; readonly error: string };

/**
 * Runs plan code. Every method rejects with an `AppError`: a plan error (`EVAL_*` codes but `EVAL_FAULT`:
 * the plan's computation failed or overflowed), `EVAL_FAULT` (the evaluation crashed, aborted the backend,
 * or ran out of memory or time in its isolate: retried, since the host may be at fault, until it repeats,
 * see {@link isEvalFault}), or `NOT_READY` when no isolate could be started (an infrastructure fault, to be
 * retried).
 */
export interface PlanEvaluator {
  /** S0: `initialize()` or the plan's `initial_state`, as a bundle of type S. */
  initialize(plan: PlanRef): Promise<Uint8Array>;
  /** The broadcast and secure-sum parameters of round `round` from the state bundle. */
  materials(plan: PlanRef, state: Uint8Array, round: number): Promise<RoundMaterials>;
  /** Folds uploads into a partial with the plan's `accumulate`. */
  fold(plan: PlanRef, task: FoldTask): Promise<FoldResult>;
  /** merge, the min-clients check, report, the secure sums, update, and the finiteness check of S'. */
  finalize(plan: PlanRef, task: FinalizeTask): Promise<FinalizeResult>;
  /**
   * Resolves when a task could run now (an isolate is up or can be started); rejects with `NOT_READY`
   * otherwise. `/readyz` asks this.
   */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A stateful program as a task names it (docs/stateful.md). As with {@link PlanRef}, isolates check the
 * document once (`checkProgram`) and keep the checked program by `id` (programs are immutable once stored);
 * `checked`, when given, spares an in-process evaluator the check.
 */
export interface ProgramRef {
  readonly id: string;
  /** The program document (JSON-serialisable), as stored. */
  readonly document: unknown;
  readonly checked?: CheckedProgram;
}

/** One call of a program's computation on the server: what a `server_call` step runs. */
export interface ProgramCallTask {
  /** The computation's name in the program's `computations`. */
  readonly fn: string;
  /**
   * The argument as a bundle of `fn`'s parameter type (its signature in the checked program: for a step
   * with several args, the parameter's struct of them); absent when `fn` takes no parameter. Non-finite
   * floats are accepted, as the reference runner passes server values as they are.
   */
  readonly arg?: Uint8Array;
  /** The round that seeds random ops: the step's index, as the reference runner gives it. */
  readonly round: number;
}

/**
 * Runs stateful programs' server computations, with the errors of {@link PlanEvaluator}: plan errors are
 * `AppError`s (`EVAL_*` from the computation, `PLAN_*`/`PROGRAM_*` from checking the document,
 * `REQUEST_INVALID` for an unknown `fn` or an argument given to a computation without a parameter or
 * missing for one with, `BUNDLE_*` for argument bytes that do not decode against the parameter type);
 * `EVAL_FAULT` for a crash, heap or time exhaustion, or a broken backend in an isolate; `NOT_READY` when no
 * isolate could be started.
 */
export interface ProgramEvaluator {
  /**
   * `fn(arg)` as the reference runner's `server_call` computes it (src/stateful/server-call.ts), as a bundle
   * of `fn`'s result type; a result with a NaN or an infinity is refused (`EVAL_ERROR` naming its path).
   */
  callProgram(program: ProgramRef, task: ProgramCallTask): Promise<Uint8Array>;
}

/**
 * Whether an error from a {@link PlanEvaluator} is a fault of the plan (the round attempt fails with it at
 * once): an `AppError` that is neither `NOT_READY` nor `EVAL_FAULT`. Anything else is retried.
 */
export function isPlanFault(e: unknown): e is AppError {
  return e instanceof AppError && e.code !== 'NOT_READY' && !isEvalFault(e);
}

/**
 * Whether an error from a {@link PlanEvaluator} is an isolate fault (`EVAL_FAULT`: a crash, heap or time
 * exhaustion, or a broken backend), or an evaluation error caused by a broken backend (an in-process
 * evaluator has no isolate to turn it into `EVAL_FAULT`). One is retried as an infrastructure fault; the
 * same step faulting again and again is deemed the plan's (`EVAL_FAULT_RETRIES`, src/isolate/fault-class.ts).
 */
export function isEvalFault(e: unknown): e is AppError {
  return e instanceof AppError && (e.code === 'EVAL_FAULT' || backendFault(e));
}
