/**
 * Which population `roundhouse simulate` runs, from its flags: the digits (split by `--clients`,
 * `--shards-per-client` and `--seed`) or, with `--data`, a clients CSV (one device per client_id, held-out
 * examples from `--eval-data`). The flags that only mean something for one source are refused with the
 * other, as usage errors that name them.
 */
import { InvalidArgumentError, Option } from 'commander';
import { digitsSource } from '../simulate/digits-population';
import { csvSource } from '../simulate/csv-population';
import { HeldOutEvaluator } from '../simulate/evaluator';
import type { Population } from '../simulate/population';
import { readTextFile } from './read-file';

/** The flags that choose and shape the population. */
export interface PopulationFlags {
  readonly data?: string;
  readonly evalData?: string;
  readonly clients: number;
  readonly shardsPerClient: number;
  readonly seed: number;
  readonly targetAccuracy?: number;
}

/**
 * `--data` and `--eval-data`. The client count and the split are the CSV's, so `--data` conflicts with
 * `--clients` and `--shards-per-client` given on the command line (their defaults are the digits').
 */
export function populationOptions(): [data: Option, evalData: Option] {
  return [
    new Option(
      '--data <clients.csv>',
      "clients CSV (run-local's format): each client_id is one simulated device with its rows; default: the digits",
    ).conflicts(['clients', 'shardsPerClient']),
    new Option(
      '--eval-data <heldout.csv>',
      "with --data: held-out examples (same columns, client_id optional) for the plan's evaluate",
    ),
  ];
}

/** Fails with a usage error (exit 2) on flags that mean nothing together (commander checks the conflicts). */
export function checkPopulationFlags(opts: PopulationFlags): void {
  if (opts.evalData !== undefined && opts.data === undefined)
    throw new InvalidArgumentError(
      '--eval-data needs --data (the digits population holds out 20% of the digits itself)',
    );
  if (opts.data !== undefined && opts.evalData === undefined && opts.targetAccuracy !== undefined)
    throw new InvalidArgumentError(
      '--target-accuracy with --data needs --eval-data: without held-out examples no accuracy is measured',
    );
}

/** The population the flags choose; reads the CSV files (failing with the file and the option's name). */
export function populationOf(opts: PopulationFlags): Population {
  if (opts.data === undefined)
    return digitsSource({ clients: opts.clients, shardsPerClient: opts.shardsPerClient, seed: opts.seed });
  const read = (file: string, option: string) => ({ text: readTextFile(file, option), source: file });
  return csvSource(
    read(opts.data, '--data'),
    opts.evalData === undefined ? undefined : read(opts.evalData, '--eval-data'),
  );
}

/**
 * What to say about held-out evaluation before a run, honestly: nothing when the plan will be evaluated on
 * held-out examples, else why its rounds show no evaluation (or why `--eval-data` goes unused).
 */
export function evaluationNote(plan: unknown, opts: PopulationFlags): string | undefined {
  if (plan === undefined && opts.evalData !== undefined)
    return `note: --eval-data needs the plan's JSON (--plan-file) for its evaluate computation; the rounds show no held-out evaluation`;
  const evaluates = HeldOutEvaluator.supports(plan);
  if (evaluates && opts.data !== undefined && opts.evalData === undefined)
    return `note: no --eval-data: the rounds show no held-out evaluation (the plan has an evaluate computation)`;
  if (!evaluates && opts.evalData !== undefined)
    return `note: the plan has no evaluate computation: --eval-data ${opts.evalData} is not used`;
  return undefined;
}
