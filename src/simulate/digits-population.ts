/**
 * The simulated population's data: the digits data split into held-out examples and McMahan-style non-IID
 * client partitions (each client holds mostly `shardsPerClient` labels). Node only (it reads the data file).
 */
import { formatType, type TffType } from '../compute/types';
import { checkClientExamples, exampleLeaves, type ClientExamples } from '../data';
import {
  digitsClientExamples,
  digitsElementType,
  loadDigits,
  partitionNonIid,
  trainTestSplit,
} from '../data/digits';
import type { Seed } from '../data/seeded';
import { loadOnce, type Population } from './population';

/** How to cut the digits data into a population. */
export interface DigitsPopulationOptions {
  readonly clients: number;
  /** Label shards per client (default 2: mostly two labels each). */
  readonly shardsPerClient?: number;
  /** Share of the examples held out for evaluation (default 0.2). */
  readonly heldOutFraction?: number;
  readonly seed?: Seed;
}

/** Each client's examples and the held-out examples. */
export interface DigitsPopulation {
  readonly clients: readonly ClientExamples[];
  readonly heldOut: ClientExamples;
}

/**
 * The digits as a simulation's {@link Population}: `clients` non-IID clients, 20% of the examples held out
 * for the plan's `evaluate`.
 */
export function digitsSource(options: DigitsPopulationOptions): Population {
  return {
    description: `the digits population (${options.clients} clients)`,
    moreClients: '--clients',
    load: loadOnce((element, what) => {
      requireDigitsElement(element, what);
      const data = digitsPopulation(options);
      checkDigitsPopulation(data, element);
      return data;
    }),
  };
}

/** Splits the digits data; the same options give the same population. */
export function digitsPopulation(options: DigitsPopulationOptions): DigitsPopulation {
  const seed = options.seed ?? 0;
  const { train, test } = trainTestSplit(loadDigits(), options.heldOutFraction ?? 0.2, seed);
  const parts = partitionNonIid(train.y, options.clients, options.shardsPerClient ?? 2, seed);
  return {
    clients: parts.map((indices) => digitsClientExamples(train, indices)),
    heldOut: digitsClientExamples(
      test,
      Array.from({ length: test.n }, (_, i) => i),
    ),
  };
}

/**
 * Fails, saying why, unless a plan's batch type takes digits examples: without `--data` the simulator's
 * clients hold nothing else, and a mismatch found at the first task would only show as every client failing.
 */
function requireDigitsElement(element: TffType, what: string): void {
  const probe: ClientExamples = { count: 0, leaves: [new Float32Array(0), new Int32Array(0)] };
  try {
    checkClientExamples(probe, exampleLeaves(element));
  } catch (e) {
    throw new Error(
      `${what} wants client data of type ${formatType(element)}, but the simulator's clients hold digits ` +
        `(${formatType(digitsElementType())}; give them your own with --data clients.csv): ` +
        (e instanceof Error ? e.message : String(e)),
    );
  }
}

/**
 * Checks every simulated client's examples (and the held-out ones) against a plan's batch type, the ranges
 * it declares included (labels), so that a plan the digits do not fit fails before any round, naming the
 * data file, the client, the leaf and the example, instead of failing every client's task.
 */
function checkDigitsPopulation(population: DigitsPopulation, element: TffType): void {
  const leaves = exampleLeaves(element);
  const file = 'data/digits.csv.gz';
  population.clients.forEach((c, i) => checkClientExamples(c, leaves, `${file} (client sim-${i})`));
  checkClientExamples(population.heldOut, leaves, `${file} (held-out examples)`);
}
