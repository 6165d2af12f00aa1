/**
 * `roundhouse simulate --program <file or library name>`: a stateful program run by a simulated digits
 * population with dropouts (src/simulate/program-simulator.ts), against a live server or (`--in-process`) a
 * server started in this process. The flags of plan simulations that mean nothing for a program are refused.
 */
import * as fs from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { initBackend } from '../compute/backend';
import { AppError } from '../errors';
import { createLogger } from '../log/logger';
import { OperatorApi, programEnded } from '../client/operator';
import { digitsProgramDevices } from '../simulate/program-population';
import { formatProgramProgress, formatProgramResult } from '../simulate/program-report';
import { simulateProgram, type ProgramSimulationResult } from '../simulate/program-simulator';
import type { InProcessServer } from '../simulate/in-process-server';
import { checkProgram } from '../stateful/check';
import type { Program } from '../stateful/program';
import { loadOperatorConfig, loadServerConfig } from './cli-config';
import { resolveIo, type CliIo } from './conventions';
import { explain } from './operator-client';
import { PROGRAM_LIBRARY } from './programs';
import { readJsonFile } from './read-file';

/** The flags `simulate --program` reads. */
export interface ProgramSimulateFlags {
  readonly program: string;
  readonly server?: string;
  readonly token?: string;
  readonly clients: number;
  readonly shardsPerClient: number;
  readonly seed: number;
  readonly dropout: number;
  readonly stepTimeoutS?: number;
  readonly inProcess?: boolean;
  readonly json?: boolean;
}

/** The plan simulation's options, none of which a program simulation takes (commander's attribute names). */
export const PLAN_ONLY_OPTIONS = [
  'plan',
  'submit',
  'planFile',
  'data',
  'evalData',
  'unmaskDropout',
  'slow',
  'slowDelayS',
  'timeScale',
  'pauseAfterTaskS',
  'rounds',
  'targetAccuracy',
] as const;

/**
 * The program `--program` names: a library program (built with its defaults and a cohort of the simulated
 * devices: target_clients = --clients, min_clients half of them, at least 2) or a program file, checked as
 * the server checks it. `--step-timeout-s` replaces the cohort's step_timeout_s.
 */
export function programFor(spec: string, clients: number, stepTimeoutS: number | undefined): Program {
  const library = PROGRAM_LIBRARY[spec];
  if (library && !fs.existsSync(spec)) {
    if (clients < 2)
      throw new InvalidArgumentError('--program: a cohort needs at least 2 devices (--clients)');
    return library.build({
      targetClients: clients,
      minClients: Math.max(2, Math.ceil(clients / 2)),
      ...(stepTimeoutS === undefined ? {} : { stepTimeoutS }),
    });
  }
  if (!fs.existsSync(spec) && !/[./\\]/.test(spec)) {
    throw new InvalidArgumentError(
      `--program ${spec}: no such file, nor a library program (${Object.keys(PROGRAM_LIBRARY).join(', ')})`,
    );
  }
  const doc = readJsonFile(spec, '--program');
  let program: Program;
  try {
    program = checkProgram(doc).program;
  } catch (e) {
    if (e instanceof AppError) throw new Error(`--program ${spec} is refused: ${e.code}: ${e.message}`);
    throw e;
  }
  if (stepTimeoutS === undefined) return program;
  return { ...program, cohort: { ...program.cohort, step_timeout_s: stepTimeoutS } };
}

/**
 * Runs the simulation: progress lines on stderr, the report on stdout (`--json`: the result as JSON). A
 * program that does not complete fails the command (exit 1) with the server's reason, after the report.
 */
export async function runProgramSimulation(
  opts: ProgramSimulateFlags,
  io: CliIo,
  fail: (message: string) => never,
): Promise<void> {
  const { out, err } = resolveIo(io);
  if (opts.inProcess && (opts.server !== undefined || opts.token !== undefined))
    throw new InvalidArgumentError('--in-process starts its own server: no --server or --token with it');
  const program = programFor(opts.program, opts.clients, opts.stepTimeoutS);
  const { min_clients: min, target_clients: target, join_timeout_s: joinS } = program.cohort;
  if (min > opts.clients) {
    throw new Error(
      `program ${program.name} needs a cohort of at least ${min} devices (cohort.min_clients), but the ` +
        `simulation has ${opts.clients} (--clients): it could never start`,
    );
  }
  if (target > opts.clients) {
    err(
      `note: the cohort's target is ${target} devices and the simulation has ${opts.clients}: the server ` +
        `recruits for join_timeout_s (${joinS} s) before it starts with them\n`,
    );
  }
  // Read (and checked against the program's collections) before anything starts.
  const devices = digitsProgramDevices(program, {
    clients: opts.clients,
    shardsPerClient: opts.shardsPerClient,
    seed: opts.seed,
  });
  const log = createLogger({ level: 'warn' });
  await initBackend();
  let server: InProcessServer | undefined;
  const interrupt = new AbortController();
  const onSigint = (): void => interrupt.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  let result: ProgramSimulationResult;
  try {
    let url: string;
    let token: string | undefined;
    if (opts.inProcess) {
      // Loaded here so that the other commands do not load the server's dependencies.
      const { startInProcessServer } = await import('../simulate/in-process-server');
      server = await startInProcessServer(loadServerConfig({}).config, log, { logLevel: 'warn' });
      ({ url, operatorToken: token } = server);
      err(`in-process server at ${url}\n`);
    } else {
      ({ serverUrl: url, token } = loadOperatorConfig(opts));
      if (!token) throw new Error('no operator token: pass --token or set OPERATOR_TOKEN');
      await warnOfOthers(new OperatorApi(url, token), program.population, err);
    }
    try {
      result = await simulateProgram({
        server: url,
        token,
        program,
        devices,
        seed: opts.seed,
        dropout: opts.dropout,
        signal: interrupt.signal,
        onProgress: (p) => err(`${formatProgramProgress(p)}\n`),
        onDeath: (i, device) => err(`device ${i} (${device}) died after its first contribution\n`),
      });
    } catch (e) {
      throw explain(e, 'the program simulation');
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
    await server?.close();
  }
  out(opts.json ? `${JSON.stringify(result, null, 2)}\n` : formatProgramResult(result));
  const p = result.program;
  if (p.status !== 'completed') {
    const why = programEnded(p.status) ? (p.error ?? p.status) : 'the simulation was stopped';
    fail(`program ${p.id} ${p.status}: ${why}`);
  }
}

/** Warns when the population already runs another program: its devices would join whichever recruits. */
async function warnOfOthers(api: OperatorApi, population: string, err: (t: string) => void): Promise<void> {
  const others = (
    await api.programs().catch((e: unknown) => Promise.reject(explain(e, 'GET /v1/programs')))
  ).filter((p) => p.population === population && !programEnded(p.status));
  if (others.length > 0) {
    err(
      `warning: population ${population} already runs ${others.map((p) => `${p.id} (${p.name}, ${p.status})`).join(', ')}; ` +
        `the simulated devices may join it instead of this program\n`,
    );
  }
}
