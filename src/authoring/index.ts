/**
 * `roundhouse/builder`: what a plan author needs to write a custom plan in code, the same pieces the plan
 * library (src/plans) is built from. `PlanBuilder.build` runs the server's `checkPlan`, so a plan that
 * builds passes `roundhouse validate` and POST /v1/plans up to the server's configured bounds.
 * Client data for such a plan (the clients CSV) is `roundhouse/data`.
 */
export {
  BaseBuilder,
  BuildError,
  ComputationBuilder,
  PlanBuilder,
  TreeOps,
  type Body,
  type BuiltSignature,
  type FnRef,
  type Handle,
  type NullaryBody,
  type Operand,
  type PlanMeta,
  type ReduceOptions,
  type Slot,
  type StructFields,
} from '../compute/builder';
export {
  EMPTY_STRUCT,
  formatType,
  sequenceType,
  structType,
  tensorType,
  type Dtype,
  type SequenceType,
  type Shape,
  type Signature,
  type StructField,
  type StructType,
  type TensorType,
  type TffType,
} from '../compute/types';
// The form's type helpers: the parameter and result shapes every plan's computations take.
export {
  defineSecureParams,
  EMPTY,
  f32,
  i32,
  named,
  updateParam,
  workParam,
  workResult,
  type SecureParam,
  type SecureParams,
} from '../plans/common';
export { checkPlan, FORM_SLOTS, type CheckedPlan } from '../plan/validate';
export type {
  BoundMode,
  ClientDataSpec,
  DifferentialPrivacy,
  Plan,
  Schedule,
  UpdateBounds,
} from '../generated/plan';
// Stateful programs (docs/stateful.md): written and checked here, run in one process by `runProgram`
// (`roundhouse/runner`); the server does not run them yet.
export { ProgramBuilder, type AggregateOptions, type ProgramMeta } from '../stateful/builder';
export { checkProgram, type CheckedProgram } from '../stateful/check';
export { PROGRAM_FORMAT, type Cohort, type Placement, type Program, type Step } from '../stateful/program';
export { buildPersonalised } from '../stateful/library/personalised';
export { buildTrainThenEvaluate } from '../stateful/library/train-then-evaluate';
