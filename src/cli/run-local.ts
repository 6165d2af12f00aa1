import { Command, InvalidArgumentError } from 'commander';
import * as fs from 'node:fs';
import { encodeBundle } from '../codec';
import { initBackend } from '../compute/backend';
import type { JsonValue } from '../compute/value-json';
import { readClientsCsv, readHeldOutCsv } from '../data';
import type { Plan } from '../generated/plan';
import { createLogger } from '../log/logger';
import { LocalRunner, type LocalRoundResult } from '../runner/local-runner';
import { readJsonFile, readTextFile } from './read-file';

/** Parses a positive integer option, failing with the option's name. */
export function positiveInt(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

/** Parses a fraction option in [0, 1], failing with the option's name. */
export function fraction(name: string): (v: string) => number {
  return (v) => {
    const f = Number(v);
    if (v.trim() === '' || !(f >= 0 && f <= 1))
      throw new InvalidArgumentError(`${name} must be a fraction in [0, 1], got "${v}"`);
    return f;
  };
}

/** One line per round for people; `--json` prints the round objects instead. */
export function formatRound(r: LocalRoundResult, total: number, ms: number): string {
  const flat = (prefix: string, v: JsonValue | undefined): string[] => {
    if (v === undefined) return [];
    if (typeof v === 'number') return [`${prefix}=${Number.isInteger(v) ? v : v.toFixed(4)}`];
    if (typeof v === 'boolean') return [`${prefix}=${v}`];
    if (Array.isArray(v))
      return v.length <= 12
        ? [
            `${prefix}=[${v.map((x) => (typeof x === 'number' ? +x.toFixed(4) : JSON.stringify(x))).join(',')}]`,
          ]
        : [`${prefix}=[${v.length} values]`];
    return Object.entries(v).flatMap(([k, x]) => flat(prefix ? `${prefix}.${k}` : k, x));
  };
  const sa = r.secureAggregation;
  const parts = [
    `round ${String(r.round).padStart(String(total).length)}/${total}`,
    `participants=${r.participants}`,
    ...flat('', r.output),
    ...flat('eval', r.evaluation),
    ...(sa
      ? [
          `${sa.protocol}(degree=${sa.degree} threshold=${sa.threshold} shared=${sa.shared}` +
            ` dropped_after_shares=${sa.droppedAfterShares.length}` +
            ` dropped_after_upload=${sa.droppedAfterUpload.length} unmasked=${sa.unmasked})`,
        ]
      : []),
    `(${(ms / 1000).toFixed(1)}s)`,
  ];
  return parts.join('  ');
}

/**
 * `roundhouse run-local plan.json --data clients.csv`: runs a plan's rounds in this process as the server
 * would, the SecAgg exchange of a plan that masks its secure sums included (LocalRunner.simulateRound).
 */
export function runLocalCommand(): Command {
  return new Command('run-local')
    .description("run a plan's rounds in one process over CSV client data, as the server would")
    .argument('<plan>', 'plan JSON file (for example from `roundhouse plans build`)')
    .requiredOption(
      '--data <csv>',
      'clients CSV: a client_id column, then the element tensors flattened per example',
    )
    .option(
      '--eval-data <csv>',
      "held-out examples (same CSV format, all rows used) for the plan's evaluate computation",
    )
    .option('--rounds <n>', 'rounds to run (default: the plan schedule)', positiveInt('--rounds'))
    .option(
      '--clients-per-round <n>',
      'clients sampled per round (default: target_clients)',
      positiveInt('--clients-per-round'),
    )
    .option(
      '--partials <n>',
      'partial accumulators merged per round, like aggregation workers',
      positiveInt('--partials'),
      2,
    )
    .option('--seed <n>', 'seed of client sampling (and of SecAgg dropouts and graphs)', (v) => Number(v), 0)
    .option(
      '--secagg-drop-after-shares <fraction>',
      "SecAgg plans: this fraction of each round's clients leaves after sharing its keys (no upload)",
      fraction('--secagg-drop-after-shares'),
    )
    .option(
      '--secagg-drop-after-upload <fraction>',
      "SecAgg plans: this fraction of each round's clients uploads, then does not help unmask the sum",
      fraction('--secagg-drop-after-upload'),
    )
    .option('--json', "print one JSON object per round on stdout (with `ms`, the round's wall time)")
    .option(
      '--save-state <file>',
      'write the final server state as a tensor bundle (safetensors; what GET /v1/plans/{id}/state answers)',
    )
    .action(
      async (
        planFile: string,
        opts: {
          data: string;
          evalData?: string;
          rounds?: number;
          clientsPerRound?: number;
          partials: number;
          seed: number;
          secaggDropAfterShares?: number;
          secaggDropAfterUpload?: number;
          json?: boolean;
          saveState?: string;
        },
      ) => {
        // Every input is read and checked before the backend starts, so that a wrong path fails at once.
        const plan = readJsonFile(planFile, 'plan') as Plan;
        const element = (plan as Partial<Plan> | null)?.client_data?.element;
        if (!element) throw new Error(`plan ${planFile} has no client_data.element; is it a plan?`);
        const clients = readClientsCsv(readTextFile(opts.data, '--data'), element, { source: opts.data });
        const evaluationData = opts.evalData
          ? readHeldOutCsv(readTextFile(opts.evalData, '--eval-data'), element, opts.evalData)
          : undefined;
        const log = createLogger();
        const backend = await initBackend();
        log.info({ backend }, 'TensorFlow.js backend ready');
        const runner = new LocalRunner(plan, clients, {
          rounds: opts.rounds,
          clientsPerRound: opts.clientsPerRound,
          partials: opts.partials,
          seed: opts.seed,
          evaluationData,
          ...(opts.secaggDropAfterShares !== undefined || opts.secaggDropAfterUpload !== undefined
            ? {
                secAggDropouts: {
                  afterShares: opts.secaggDropAfterShares ?? 0,
                  afterUpload: opts.secaggDropAfterUpload ?? 0,
                },
              }
            : {}),
        });
        const total = opts.rounds ?? runner.plan.schedule.rounds;
        log.info({ plan: runner.plan.name, clients: clients.size, rounds: total }, 'running plan locally');
        try {
          let t = Date.now();
          for await (const r of runner.simulateRounds()) {
            const now = Date.now();
            process.stdout.write(
              opts.json
                ? `${JSON.stringify({ ...r, ms: now - t })}\n`
                : `${formatRound(r, total, now - t)}\n`,
            );
            t = now;
          }
          if (opts.saveState) {
            const bytes = encodeBundle(runner.state(), runner.checked.types.S);
            try {
              fs.writeFileSync(opts.saveState, bytes);
            } catch (e) {
              throw new Error(`cannot write --save-state ${opts.saveState}: ${(e as Error).message}`);
            }
            log.info({ file: opts.saveState, bytes: bytes.length }, 'final server state saved');
          }
        } finally {
          runner.dispose();
        }
      },
    );
}
