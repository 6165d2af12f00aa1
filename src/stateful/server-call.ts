/**
 * How the server runs one of a stateful program's computations (docs/stateful.md, "The reference runner"):
 * shared by the reference runner and the plan isolates, so that a `server_call` computes the same values
 * in-process and in the server.
 */
import type { Computation } from '../generated/computation';
import type { Interpreter } from '../compute/interpreter';
import type { Value } from '../compute/value';
import { AppError } from '../errors';
import type { Program } from './program';

/** The computation `fn` of the program; REQUEST_INVALID when the program has none of that name. */
export function programComputation(program: Pick<Program, 'computations'>, fn: string): Computation {
  // Own names only: a computation called "toString" must not reach Object.prototype.
  if (!Object.hasOwn(program.computations, fn)) {
    throw new AppError('REQUEST_INVALID', `the program has no computation "${fn}"`);
  }
  return program.computations[fn]!;
}

/**
 * Runs the program's computation `fn` on `arg` (undefined when it takes no parameter) as the server does:
 * with the interpreter, server-only ops allowed, the step's index as the round that seeds random ops and the
 * computation's name as the label (which also names it in errors), so that a program's `initialize` at
 * step 0 draws what a plan's does at round 0. The caller owns the result's tensors; plan errors are thrown
 * as the interpreter's AppErrors (EVAL_*).
 */
export function runServerComputation(
  interpreter: Interpreter,
  program: Pick<Program, 'computations'>,
  fn: string,
  arg: Value | undefined,
  step: number,
): Value {
  return interpreter.run(programComputation(program, fn), arg, { round: step, label: fn });
}
