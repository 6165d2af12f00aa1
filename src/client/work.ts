/** Running a client plan's `work` on local examples, with the server's interpreter, into an upload bundle. */
import { decodeBundle, encodeBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import { disposeValue, structValue } from '../compute/value';
import { toBatches, type ClientExamples } from '../data';
import type { ClientPlan } from './types';

/**
 * `(U, V1, V2, V3) = work(D, C)` for one task, encoded as the bundle of the plan's upload type. Every
 * tensor made here is disposed before returning, so a long-running client does not grow.
 */
export function runWork(
  plan: ClientPlan,
  broadcast: Uint8Array,
  examples: ClientExamples,
  round: number,
): Uint8Array {
  const interpreter = new Interpreter(plan.functions);
  const C = decodeBundle(broadcast, plan.broadcast_type);
  try {
    const D = toBatches(examples, plan.client_data.element, plan.client_data.batch_size);
    try {
      const out = interpreter.run(
        plan.work,
        structValue([
          [undefined, D],
          [undefined, C],
        ]),
        { round, label: 'work' },
      );
      try {
        return encodeBundle(out, plan.upload_type);
      } finally {
        disposeValue(out);
      }
    } finally {
      disposeValue(D);
    }
  } finally {
    disposeValue(C);
  }
}

/** Gzips with the platform's CompressionStream (browsers and Node 18+). */
export async function gzipBytes(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
