import { Command } from 'commander';
import { definePlan, type OptionSpecs } from '../plans/options';
import type { ProgramDetail, ProgramSummary } from '../client/operator';
import { buildPersonalised } from '../stateful/library/personalised';
import { FEDAVG_PROGRAM_OPTIONS } from '../stateful/library/fedavg-program';
import { buildTrainThenEvaluate } from '../stateful/library/train-then-evaluate';
import type { Program } from '../stateful/program';
import { loadOperatorConfig } from './cli-config';
import { applyConventions, listKnownOnUnknown, resolveIo, type CliIo } from './conventions';
import { addBuildCommand, printLibrary, type LibraryEntry } from './library-command';
import { operatorApi, withServerOptions } from './operator-client';
import { outputLines } from '../simulate/program-report';
import { readJsonFile } from './read-file';
import { formatTable } from './status';

/** A program of the library: what `programs list` shows and `programs build` builds. */
export interface LibraryProgram extends LibraryEntry {
  /** Builds the program (checked as the server checks it); missing options take their defaults. */
  build(options?: Readonly<Record<string, unknown>>): Program;
}

/** Registers a program builder with its declared options, as `definePlan` does for plans. */
function defineProgram<T extends object>(
  description: string,
  specs: OptionSpecs<T>,
  build: (options: Partial<T>) => Program,
): LibraryProgram {
  // definePlan names the options (flags, keys) as for plans; its build is not used: the program's builder
  // resolves and checks the options itself.
  const { options } = definePlan(description, specs, () => {
    throw new Error('unused');
  });
  return { description, options, build: (given = {}) => build(given as Partial<T>) };
}

/** The ready stateful programs by name (docs/stateful.md), with their descriptions and declared options. */
export const PROGRAM_LIBRARY: Readonly<Record<string, LibraryProgram>> = Object.freeze({
  'train-then-evaluate': defineProgram(
    'FedAvg of a dense MLP for --rounds rounds, then the trained model scored by the same devices on their test data',
    FEDAVG_PROGRAM_OPTIONS,
    buildTrainThenEvaluate,
  ),
  personalised: defineProgram(
    'personalised FedAvg: each device keeps its own head (last layer) across rounds; global and personalised models scored on its test data',
    FEDAVG_PROGRAM_OPTIONS,
    buildPersonalised,
  ),
});

function time(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? '' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The programs table of `roundhouse programs status`. */
export function formatPrograms(programs: readonly ProgramSummary[]): string {
  if (programs.length === 0)
    return 'no programs; submit one with `roundhouse programs submit program.json`\n';
  return formatTable(
    ['ID', 'NAME', 'POPULATION', 'STATUS', 'STEP', 'COHORT', 'LIVE', 'CREATED'],
    programs.map((p) => [
      p.id,
      p.name,
      p.population,
      p.status,
      `${p.step}/${p.steps}`,
      `${p.cohort}/${p.target_clients}`,
      String(p.live),
      time(p.created_at),
    ]),
  );
}

/**
 * One program as `roundhouse programs status <id>` shows it: where it is, its cohort and sessions, and its
 * outputs once completed (each cut to `outputWidth` characters) or why it failed.
 */
export function formatProgram(p: ProgramDetail, outputWidth = 80): string {
  const lines = [
    `program ${p.id}  ${p.name}  population=${p.population}  status=${p.status}  step=${p.step}/${p.steps}  ` +
      `created=${time(p.created_at)}${p.ended_at ? `  ended=${time(p.ended_at)}` : ''}`,
    `cohort: ${p.cohort} joined (target ${p.target_clients}, min ${p.min_clients}); sessions: ` +
      `${p.sessions.live} live, ${p.sessions.failed} failed, ${p.sessions.left} left`,
  ];
  if (p.error)
    lines.push(`failed${p.error_step === undefined ? '' : ` at step ${p.error_step}`}: ${p.error}`);
  lines.push(...outputLines(p.outputs, outputWidth));
  return `${lines.join('\n')}\n`;
}

/**
 * `roundhouse programs list|build|submit|status`: the stateful programs of the library (listed, and built as
 * program JSON with the options of each, as `plans` does for plans), and programs on a server: submitted
 * (the server checks them) and read back with their cohort, sessions and outputs.
 */
export function programsCommand(io: CliIo = {}): Command {
  const { out } = resolveIo(io);
  const programs = new Command('programs')
    .description('stateful programs: list or build the library ones, submit one, read their status')
    .showSuggestionAfterError(true);

  programs
    .command('list')
    .description('list the library programs and what they compute')
    .option('--json', 'print names, descriptions and options as JSON')
    .action((opts: { json?: boolean }) => printLibrary(PROGRAM_LIBRARY, out, opts.json));

  const build = programs
    .command('build')
    .description('print a library program as JSON (see `programs build <name> --help` for its options)')
    .usage('<name> [options]');
  for (const [name, entry] of Object.entries(PROGRAM_LIBRARY))
    addBuildCommand(build, name, entry, out, 'program');
  listKnownOnUnknown(build, 'program');

  withServerOptions(
    programs
      .command('submit')
      .description('submit a program to the server and print its id')
      .argument(
        '<program>',
        'program JSON file (- reads stdin), for example from `roundhouse programs build`',
      ),
  )
    .option('--json', 'print the program summary as JSON instead of the id')
    .action(async (file: string, opts: { server?: string; token?: string; json?: boolean }) => {
      const doc = readJsonFile(file, 'program');
      const summary = await operatorApi(loadOperatorConfig(opts)).call('POST /v1/programs', (api) =>
        api.submitProgram(doc),
      );
      out(opts.json ? `${JSON.stringify(summary, null, 2)}\n` : `${summary.id}\n`);
    });

  withServerOptions(
    programs
      .command('status')
      .description("list the server's programs, or one program's progress, sessions and outputs")
      .argument('[program-id]', 'show this program'),
  )
    .option('--json', 'print the server answer as JSON')
    .option('--full', 'print outputs in full instead of cutting them to a line')
    .action(
      async (
        id: string | undefined,
        opts: { server?: string; token?: string; json?: boolean; full?: boolean },
      ) => {
        const client = operatorApi(loadOperatorConfig(opts));
        if (id === undefined) {
          const list = await client.call('GET /v1/programs', (api) => api.programs());
          out(opts.json ? `${JSON.stringify({ programs: list }, null, 2)}\n` : formatPrograms(list));
          return;
        }
        const p = await client.call(`GET /v1/programs/${id}`, (api) => api.program(id));
        out(opts.json ? `${JSON.stringify(p, null, 2)}\n` : formatProgram(p, opts.full ? Infinity : 80));
      },
    );
  return applyConventions(programs, io);
}
