/**
 * The argument of a program call (`ProgramCallTask.arg`) from the bundles of the server values a
 * `server_call` step names, on typed arrays only (no TensorFlow.js), so that a driver that keeps server
 * values as bundles can build it without decoding them.
 */
import { bundleLeaves, readTypedBundle, writeBundle, type BundleTensor } from '../codec';
import { formatType, type TffType } from '../compute/types';
import { AppError } from '../errors';

/** A server value as a bundle of its static type. */
export interface TypedBundle {
  readonly bytes: Uint8Array;
  readonly type: TffType;
}

/**
 * The bundle of `parameter` that a call with `args` passes, as `server_call` does (docs/stateful.md): none
 * for no args, the value for one, an unnamed struct of them in order for several. The tensors are the
 * args', renamed to the parameter's leaves (a value's names and the parameter's may differ where one of
 * them leaves a field unnamed); the bytes equal `encodeBundle(callArgument(values), parameter)`. Throws the
 * BUNDLE_* error of an arg whose bytes do not carry its type, and REQUEST_INVALID when the args do not
 * fill the parameter (the program checker refuses such steps, so it means a wrong call).
 */
export function programCallArgument(
  parameter: TffType | undefined,
  args: readonly TypedBundle[],
): Uint8Array | undefined {
  if (!parameter) {
    if (args.length > 0)
      throw invalid(`the computation takes no parameter, but ${args.length} args are given`);
    return undefined;
  }
  if (args.length === 0)
    throw invalid(`the computation takes ${formatType(parameter)}, but no args are given`);
  // Depth-first leaf order: the leaves of a struct of the args are each arg's leaves, one arg after another.
  const given = args.flatMap((a) => readTypedBundle(a.bytes, a.type, { requireFinite: false }).tensors);
  const leaves = bundleLeaves(parameter);
  const fits =
    (args.length === 1 || (parameter.kind === 'struct' && parameter.fields.length === args.length)) &&
    leaves.length === given.length &&
    leaves.every(({ leaf }, i) => leaf.type.dtype === given[i]!.dtype);
  if (!fits) {
    const types = args.map((a) => formatType(a.type)).join(', ');
    throw invalid(`the args (${types}) do not fill the parameter ${formatType(parameter)}`);
  }
  return writeBundle(leaves.map(({ name }, i): BundleTensor => ({ ...given[i]!, name })));
}

function invalid(message: string): AppError {
  return new AppError('REQUEST_INVALID', message);
}
