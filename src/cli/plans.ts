import { Command } from 'commander';
import { PLAN_LIBRARY } from '../plans';
import { applyConventions, EXIT, listKnownOnUnknown, resolveIo, type CliIo } from './conventions';
import { addBuildCommand, printLibrary } from './library-command';

/** Where the `plans` command writes and how it exits; tests replace them. */
export type PlansCommandIo = CliIo;

/** The exit code of a command-line usage mistake (bad option value, unknown option or plan). */
export const USAGE_EXIT_CODE = EXIT.usage;

/**
 * `roundhouse plans list` and `roundhouse plans build <name> [options]`: lists the plan library and prints a
 * library plan's JSON, built with the given options, on stdout. Each plan is a subcommand of `build`, so
 * `roundhouse plans build fedavg --help` lists that plan's options with their defaults.
 */
export function plansCommand(io: PlansCommandIo = {}): Command {
  const { out } = resolveIo(io);
  const plans = new Command('plans')
    .description('list the ready plans of the library, or build one as plan JSON')
    .showSuggestionAfterError(true);

  plans
    .command('list')
    .description('list the library plans and what they compute')
    .option('--json', 'print names, descriptions and options as JSON')
    .action((opts: { json?: boolean }) => printLibrary(PLAN_LIBRARY, out, opts.json));

  const build = plans
    .command('build')
    .description('print a library plan as JSON (see `plans build <name> --help` for its options)')
    .usage('<name> [options]');
  for (const [name, entry] of Object.entries(PLAN_LIBRARY)) addBuildCommand(build, name, entry, out, 'plan');
  listKnownOnUnknown(build, 'plan');
  return applyConventions(plans, io);
}
