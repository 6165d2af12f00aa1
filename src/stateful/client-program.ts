/**
 * The client program (`roundhouse.client-program/v1`, docs/stateful.md "The session protocol"): the part of
 * a program a device downloads to answer executor requests, and nothing else.
 */
import { calledFunction } from '../compute/called-function';
import type { Computation } from '../generated/computation';
import type { ClientDataSpec } from '../generated/plan';
import type { Program } from './program';

/** The `format` of a client program. */
export const CLIENT_PROGRAM_FORMAT = 'roundhouse.client-program/v1';

/** What a device needs of a program: its data collections and the computations its client steps call. */
export interface ClientProgram {
  readonly format: typeof CLIENT_PROGRAM_FORMAT;
  readonly client_data: Readonly<Record<string, ClientDataSpec>>;
  readonly computations: Readonly<Record<string, Computation>>;
  readonly functions?: Readonly<Record<string, Computation>>;
}

/**
 * A program's client program: `client_data`, the computations of its `client_call` steps and the functions
 * they reach. Server computations and functions stay out: a device gets only what it runs.
 */
export function clientProgramOf(program: Program): ClientProgram {
  const computations = new Map<string, Computation>();
  for (const step of program.steps) {
    if (step.op === 'client_call') computations.set(step.fn, program.computations[step.fn]!);
  }
  const all = new Map(Object.entries(program.functions ?? {}));
  const functions = new Map<string, Computation>();
  const reach = (comp: Computation): void => {
    for (const node of comp.nodes) {
      const name = calledFunction(node);
      const fn = name === undefined ? undefined : all.get(name);
      if (fn && !functions.has(name!)) {
        functions.set(name!, fn);
        reach(fn);
      }
    }
  };
  for (const comp of computations.values()) reach(comp);
  return {
    format: CLIENT_PROGRAM_FORMAT,
    client_data: program.client_data,
    computations: Object.fromEntries(computations),
    ...(functions.size ? { functions: Object.fromEntries(functions) } : {}),
  };
}
