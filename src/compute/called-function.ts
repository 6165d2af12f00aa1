import type { Node } from '../generated/computation';

/**
 * The function a structural node reaches, if any. Its own module, apart from the checker, because the
 * browser SDK needs it (the session runner's client-program check) and the checker loads ajv, whose
 * validators are compiled with `new Function`: a page whose CSP has no 'unsafe-eval' (the demo page's)
 * refuses that, and the whole bundle then fails to load.
 */
export function calledFunction(node: Node): string | undefined {
  if (node.op === 'call' || node.op === 'fold' || node.op === 'repeat' || node.op === 'value_and_grad') {
    const fn = (node.attrs as { fn?: unknown } | undefined)?.fn;
    return typeof fn === 'string' ? fn : undefined;
  }
  return undefined;
}
