import { Command, InvalidArgumentError, Option } from 'commander';
import { initBackend } from '../compute/backend';
import { createLogger, type Logger } from '../log/logger';
import { OperatorApi } from '../client/operator';
import { formatResult, formatSummary, RoundBar } from '../simulate/report';
import { simulate, type SimulationOptions, type SimulationResult } from '../simulate/simulator';
import { checkServable } from '../simulate/population';
import type { Plan } from '../generated/plan';
import { loadOperatorConfig } from './cli-config';
import { EXIT, type CliIo } from './conventions';
import { readJsonFile } from './read-file';
import { positiveInt } from './run-local';
import { PLAN_ONLY_OPTIONS, runProgramSimulation } from './simulate-program';
import {
  checkPopulationFlags,
  evaluationNote,
  populationOf,
  populationOptions,
  type PopulationFlags,
} from './simulate-population';

/** Parses a number in [0, 1], failing with the option's name. */
export function fraction(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !(n >= 0 && n <= 1))
      throw new InvalidArgumentError(`${name} must be in 0..1, got "${v}"`);
    return n;
  };
}

/** Parses a number > 0 (or >= 0 with `zero`), failing with the option's name. */
export function positiveNumber(name: string, zero = false): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (!zero && n === 0))
      throw new InvalidArgumentError(`${name} must be a number ${zero ? '>= 0' : '> 0'}, got "${v}"`);
    return n;
  };
}

/**
 * Runs a simulation and shows it: a progress bar on a terminal's stderr, one line (or with `json`, one JSON
 * object) per finished round on stdout, and with `finalLine` a closing line. Ctrl-C stops it cleanly.
 */
export async function runAndReport(
  options: Omit<SimulationOptions, 'onRound' | 'onProgress' | 'signal'>,
  output: {
    readonly json?: boolean;
    readonly finalLine?: boolean;
    readonly log: Logger;
    /** Stops the simulation instead of Ctrl-C, which is then left to the caller. */
    readonly signal?: AbortSignal;
  },
): Promise<SimulationResult> {
  const bar = new RoundBar();
  const interrupt = new AbortController();
  const onSigint = (): void => interrupt.abort(new Error('interrupted'));
  if (!output.signal) process.once('SIGINT', onSigint);
  let clientErrors = 0;
  try {
    const result = await simulate({
      ...options,
      signal: output.signal ?? interrupt.signal,
      onProgress: (p) => bar.update(p),
      onRound: (s) => bar.line(output.json ? JSON.stringify(s) : formatSummary(s)),
      onClientError: (e) => {
        // One line per kind of trouble is enough; the summaries count the rest.
        if (clientErrors++ === 0)
          output.log.warn({ err: e }, 'a simulated client failed a task (counted as errors)');
      },
      onServerTrouble: (e) => {
        if (e === undefined) output.log.info('the server answers again; the simulation goes on');
        else
          output.log.warn(
            { err: e },
            'the server cannot be read; the simulation and its clients wait for it (up to 5 minutes)',
          );
      },
    });
    bar.clear();
    if (output.finalLine && !output.json)
      process.stdout.write(`${formatResult(result, options.targetAccuracy)}\n`);
    output.log.info(
      {
        reason: result.reason,
        rounds: result.rounds.length,
        accuracy: result.accuracy,
        ms: result.elapsedMs,
      },
      'simulation finished',
    );
    return result;
  } finally {
    bar.clear();
    process.removeListener('SIGINT', onSigint);
  }
}

interface SimulateFlags extends PopulationFlags {
  server?: string;
  token?: string;
  plan?: string;
  submit?: string;
  planFile?: string;
  dropout: number;
  unmaskDropout: number;
  slow: number;
  slowDelayS: number;
  timeScale: number;
  pauseAfterTaskS: number;
  rounds?: number;
  json?: boolean;
  program?: string;
  stepTimeoutS?: number;
  inProcess?: boolean;
}

/**
 * `roundhouse simulate`: a population of simulated clients (RoundhouseClient instances, real HTTP) against
 * a live server, holding the digits or, with `--data`, a clients CSV's examples, with dropout and
 * stragglers, and a summary of every round with held-out accuracy when there are held-out examples (and,
 * for plans with secure aggregation, its counts). The clients are the SDK's, so they run SecAgg+ when a
 * round asks for it: `roundhouse plans build fedavg --secure -o plan.json` then `--submit plan.json`.
 * With `--program`, a stateful program instead (src/cli/simulate-program.ts): its devices join the cohort,
 * some die mid-program (`--dropout`), and the program's status, outputs and devices are reported.
 */
export function simulateCommand(io: CliIo = {}): Command {
  const [dataOption, evalDataOption] = populationOptions();
  return new Command('simulate')
    .description(
      'run a population of simulated clients (the digits, or a clients CSV with --data) against a live server, ' +
        'with progress and per-round summaries; or, with --program, a stateful program with dropouts',
    )
    .option('--server <url>', 'server URL (default: ROUNDHOUSE_URL, else http://127.0.0.1:8080)')
    .option('--token <token>', 'operator token, to read rounds and state (default: OPERATOR_TOKEN)')
    .option('--plan <id>', 'join this plan (already submitted)')
    .option('--submit <plan.json>', 'submit this plan first, then run it')
    .addOption(
      new Option(
        '--program <program>',
        'submit this stateful program (a JSON file, or a library program: see `roundhouse programs list`) and run it',
      ).conflicts([...PLAN_ONLY_OPTIONS]),
    )
    .option(
      '--step-timeout-s <s>',
      "--program: the cohort's step_timeout_s, how long the server waits for a silent device (a dead one)",
      positiveInt('--step-timeout-s'),
    )
    .option('--in-process', '--program: run the server (API and a worker) in this process, on REDIS_URL')
    .option(
      '--plan-file <plan.json>',
      'the plan JSON of --plan, for held-out evaluation with its evaluate computation',
    )
    .addOption(dataOption)
    .addOption(evalDataOption)
    .option('--clients <n>', 'simulated digits clients (not with --data)', positiveInt('--clients'), 100)
    .option(
      '--shards-per-client <n>',
      'digits: label shards per client (non-IID: 2 means mostly two digits; not with --data)',
      positiveInt('--shards-per-client'),
      2,
    )
    .option(
      '--seed <n>',
      "seed of the clients' randomness and behaviour, and of the digits' split (20% held out) and partition",
      (v) => Number(v),
      0,
    )
    .option(
      '--dropout <p>',
      'chance that a task is dropped after download, before upload (--program: that a device dies after its first contribution)',
      fraction('--dropout'),
      0,
    )
    .option(
      '--unmask-dropout <p>',
      'secure aggregation: chance that a task leaves after its masked upload, before unmasking',
      fraction('--unmask-dropout'),
      0,
    )
    .option(
      '--slow <p>',
      'chance that a task holds its upload back --slow-delay-s (a straggler)',
      fraction('--slow'),
      0,
    )
    .option(
      '--slow-delay-s <s>',
      "a straggler's delay before uploading, in seconds",
      positiveNumber('--slow-delay-s', true),
      10,
    )
    .option(
      '--time-scale <x>',
      'multiply every client wait (retry windows, backoff, pauses, straggler delays) by this; deadlines stay real',
      positiveNumber('--time-scale'),
      1,
    )
    .option(
      '--pause-after-task-s <s>',
      'how long a client waits after a task before checking in again',
      positiveNumber('--pause-after-task-s', true),
      5,
    )
    .option('--rounds <n>', 'stop after this many completed rounds', positiveInt('--rounds'))
    .option(
      '--target-accuracy <a>',
      'stop once held-out accuracy reaches this (with --data, needs --eval-data)',
      fraction('--target-accuracy'),
    )
    .option('--json', 'print one JSON object per round on stdout')
    .action(async (opts: SimulateFlags, self: Command) => {
      if (opts.program !== undefined) {
        const fail = (message: string): never =>
          self.error(message, { exitCode: EXIT.failure, code: 'roundhouse.programFailed' });
        return runProgramSimulation({ ...opts, program: opts.program }, io, fail);
      }
      if (opts.stepTimeoutS !== undefined || opts.inProcess)
        throw new InvalidArgumentError('--step-timeout-s and --in-process go with --program');
      if ((opts.plan === undefined) === (opts.submit === undefined)) {
        throw new InvalidArgumentError(
          'give exactly one of --plan <id> and --submit <plan.json> (or --program for a stateful program)',
        );
      }
      if (opts.dropout + opts.slow > 1)
        throw new InvalidArgumentError('--dropout plus --slow is more than 1');
      checkPopulationFlags(opts);
      // Read before anything else: a wrong path fails at once, naming the option.
      const population = populationOf(opts);
      const { serverUrl, token } = loadOperatorConfig(opts);
      if (!token) throw new Error('no operator token: pass --token or set OPERATOR_TOKEN');
      const log = createLogger();
      log.info({ backend: await initBackend() }, 'TensorFlow.js backend ready');
      let plan: unknown =
        opts.planFile === undefined ? undefined : readJsonFile(opts.planFile, '--plan-file');
      let planId = opts.plan;
      if (opts.submit !== undefined) {
        plan = readJsonFile(opts.submit, '--submit');
        const api = new OperatorApi(serverUrl, token);
        // Refused before it reaches the server: a plan the simulated clients cannot serve would run there
        // with nobody able to take part, and stay active on its population.
        checkServable(population, plan, `--submit ${opts.submit}`);
        const target = populationName(plan as Plan);
        const others = (await api.plans()).filter(
          (p) => p.population === target && (p.status === 'active' || p.status === 'paused'),
        );
        if (others.length > 0) {
          // The simulated clients would train every active plan of the population, not only this one.
          process.stderr.write(
            `warning: population ${target} already runs ${others.map((p) => `${p.id} (${p.name}, ${p.status})`).join(', ')}; ` +
              `the simulated clients take tasks of every active plan there. Cancel it (roundhouse cancel <id>) ` +
              `or submit with another --population.\n`,
          );
        }
        planId = (await api.submit(plan)).id;
        log.info({ plan: planId }, 'plan submitted');
      }
      const note = evaluationNote(plan, opts);
      if (note !== undefined) process.stderr.write(`${note}\n`);
      await runAndReport(
        {
          server: serverUrl,
          token,
          planId: planId!,
          plan,
          population,
          seed: opts.seed,
          dropout: opts.dropout,
          unmaskDropout: opts.unmaskDropout,
          slow: opts.slow,
          slowDelayS: opts.slowDelayS,
          timeScale: opts.timeScale,
          pauseAfterTaskS: opts.pauseAfterTaskS,
          rounds: opts.rounds,
          targetAccuracy: opts.targetAccuracy,
        },
        { json: opts.json, finalLine: true, log },
      );
    });
}

/** The population a plan runs on (its `population`, else its data collection). */
function populationName(plan: Plan): string {
  return plan.population ?? plan.client_data.collection;
}
