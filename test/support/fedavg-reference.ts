/**
 * The FedAvg plan run by the local runner, as the independent reference the library's FedAvg programs
 * (src/stateful/library/) are checked against, and the comparison of models as JSON.
 */
import { isStruct } from '../../src/compute/value';
import { valueToJson, type JsonValue } from '../../src/compute/value-json';
import type { ClientExamples } from '../../src/data';
import { buildFedAvg, type FedAvgOptions } from '../../src/plans/fedavg';
import { LocalRunner } from '../../src/runner/local-runner';

/** What the plan did: its initial and final model weights, and each round's participants and output. */
export interface FedAvgReference {
  readonly initial: JsonValue;
  readonly model: JsonValue;
  readonly rounds: readonly { readonly participants: number; readonly output: Record<string, number> }[];
}

/** Runs the FedAvg plan built with `options` for `rounds` rounds over the devices' training examples. */
export function fedAvgReference(
  options: Partial<FedAvgOptions>,
  devices: ReadonlyMap<string, ClientExamples>,
  rounds: number,
): FedAvgReference {
  const plan = buildFedAvg({ ...options, rounds, targetClients: devices.size });
  const runner = new LocalRunner(plan, devices, { rounds });
  try {
    const initial = (valueToJson(runner.state()) as { model: JsonValue }).model;
    const results = [...runner.rounds()].map((r) => ({
      participants: r.participants,
      output: r.output as Record<string, number>,
    }));
    const state = runner.state();
    if (!isStruct(state)) throw new Error('the FedAvg plan has no struct state');
    return { initial, model: valueToJson(state.fields[0]!.value), rounds: results };
  } finally {
    runner.dispose();
  }
}

/** Every number of a JSON value, depth first. */
export function numbers(v: JsonValue): number[] {
  if (typeof v === 'number') return [v];
  if (typeof v === 'boolean') return [Number(v)];
  return (Array.isArray(v) ? v : Object.values(v)).flatMap(numbers);
}

/** The largest difference between two JSON values of the same shape (Infinity when the shapes differ). */
export function worstDifference(actual: JsonValue, expected: JsonValue): number {
  const [a, e] = [numbers(actual), numbers(expected)];
  if (a.length !== e.length) return Infinity;
  return Math.max(0, ...a.map((x, i) => Math.abs(x - e[i]!)));
}
