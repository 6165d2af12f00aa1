/** The plan builder: write computations in TypeScript, get the IR JSON with types checked as you go. */
export { BaseBuilder, type Operand, type StructFields } from './core';
export { ComputationBuilder, type ReduceOptions } from './computation-builder';
export { BuildError, type FnRef, type Handle } from './handle';
export { FunctionSet, type Built } from './function-set';
export {
  PlanBuilder,
  type Body,
  type BuiltSignature,
  type NullaryBody,
  type PlanMeta,
  type Slot,
} from './plan-builder';
export { TreeOps } from './tree';
