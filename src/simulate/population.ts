/**
 * Where a simulation's clients get their examples: the digits split (digits-population.ts) or a clients CSV
 * (csv-population.ts). The simulator and `roundhouse simulate` see only {@link Population}, so that both
 * sources are checked against a plan, and counted, the same way before anything runs.
 */
import type { TffType } from '../compute/types';
import type { ClientExamples } from '../data';
import type { Plan } from '../generated/plan';

/** A population's examples, read for (and checked against) one plan's batch type. */
export interface PopulationData {
  /** One entry per simulated device, in a fixed order: device i holds `clients[i]`. */
  readonly clients: readonly ClientExamples[];
  /** Examples for the plan's `evaluate`; absent when the source has none (no held-out evaluation then). */
  readonly heldOut?: ClientExamples;
}

/** A source of simulated clients' data. */
export interface Population {
  /** What the data is, in messages: `digits` or the CSV file's name. */
  readonly description: string;
  /** What gives the source more clients, in the message when a plan needs more than it has. */
  readonly moreClients: string;
  /**
   * The clients' (and held-out) examples for a plan whose batch type is `element`; throws, naming the plan
   * (`what`) or the place in the data (file, row, column; client, leaf, example), when they do not fit it,
   * ranges declared by the type (labels) included. A mismatch found at the first task would only show as
   * every client failing.
   */
  load(element: TffType, what: string): PopulationData;
}

/**
 * `load` that reads the data once per batch type: the CLI loads it to check a plan before submitting it, and
 * the simulator loads it again for the plan the server answers, which is the same type.
 */
export function loadOnce(load: (element: TffType, what: string) => PopulationData): Population['load'] {
  let last: { key: string; data: PopulationData } | undefined;
  return (element, what) => {
    const key = JSON.stringify(element);
    if (last?.key !== key) last = { key, data: load(element, what) };
    return last.data;
  };
}

/**
 * Fails unless a population can serve a plan: its data fits the plan's batch type, and it has at least the
 * clients a round needs to report (`min_reports`, else `target_clients`), without which every round fails.
 * `what` names the plan in messages (`--submit plan.json`).
 */
export function checkServable(population: Population, plan: unknown, what: string): PopulationData {
  const p = plan as Partial<Plan> | null;
  const element = p?.client_data?.element;
  if (!element) throw new Error(`${what} has no client_data.element; is it a plan?`);
  const data = population.load(element, what);
  const schedule = p.schedule;
  const needed = schedule?.min_reports ?? schedule?.target_clients;
  if (needed !== undefined && data.clients.length < needed) {
    throw new Error(
      `${what} needs ${needed} clients to report a round (min_reports, else target_clients), but ` +
        `${population.description} has ${data.clients.length}: every round would fail. Build the plan with ` +
        `--target-clients ${data.clients.length} (or fewer; --min-reports too if it sets one), or give more ` +
        `clients (${population.moreClients})`,
    );
  }
  return data;
}
