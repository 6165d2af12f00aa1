/**
 * The reference client of the conformance kit (conformance/README.md): the three input files of one case
 * in, the upload bundle out, exactly as the SDK runs a task (`runWork`). `roundhouse work` is this on files;
 * the kit's generator runs it too, so the expected bundles are what the reference client uploads.
 */
import { clientPlanFormatProblem, type ClientPlan } from '../client/types';
import { runWork } from '../client/work';
import { readClientsCsv } from '../data';
import { AppError } from '../errors';
import { schemaErrorDetails, validatorFor } from '../schema-validation';

/** What one case gives a client: the client plan's JSON text, the broadcast bundle, the examples' CSV text. */
export interface WorkInputs {
  readonly clientPlan: string;
  readonly broadcast: Uint8Array;
  readonly examplesCsv: string;
}

/** The name the examples of a case belong to: the CSV of a case has no client_id column. */
const THE_CLIENT = 'client';

/**
 * Parses and checks a client plan document: a format this client knows (CLIENT_PLAN_UNSUPPORTED otherwise,
 * as the SDK answers and docs/protocol.md asks of every client), then the document's schema (REQUEST_INVALID).
 */
export function parseClientPlan(text: string): ClientPlan {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new AppError('REQUEST_INVALID', 'the client plan is not JSON', [
      { path: '', message: e instanceof Error ? e.message : String(e) },
    ]);
  }
  const problem = clientPlanFormatProblem(doc);
  if (problem !== null) throw new AppError('CLIENT_PLAN_UNSUPPORTED', problem);
  const validate = validatorFor('client-plan.schema.json');
  if (!validate(doc)) {
    throw new AppError('REQUEST_INVALID', 'invalid client plan', schemaErrorDetails(validate.errors));
  }
  return doc as ClientPlan;
}

/**
 * Runs `work` for one case: the upload bundle (uncompressed safetensors), or the AppError a client refuses
 * the task with (an unknown client plan format, examples that do not fit `client_data`, a broadcast that
 * does not decode as `broadcast_type` or holds NaN or ±Inf, a failing evaluation). Needs an initialised
 * TensorFlow.js backend.
 */
export function referenceWork(inputs: WorkInputs): Uint8Array {
  const plan = parseClientPlan(inputs.clientPlan);
  const clients = readClientsCsv(inputs.examplesCsv, plan.client_data.element, {
    source: 'examples.csv',
    singleClient: THE_CLIENT,
  });
  const examples = clients.get(THE_CLIENT);
  // The SDK abandons a task without examples (docs/protocol.md, "How `work` is called"): nothing to upload.
  if (examples === undefined || examples.count === 0) {
    throw new AppError('DATA_INVALID', 'no examples: a client without examples uploads nothing');
  }
  // Round 1: `work` may not use random ops, so the round number changes nothing in its result.
  return runWork(plan, inputs.broadcast, examples, 1);
}
