import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import { AppError } from '../errors';
import { PLAN_LIBRARY, type LibraryPlan, type NamedOption } from '../plans';
import { applyConventions, EXIT, listKnownOnUnknown, resolveIo, type CliIo } from './conventions';

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
    .action((opts: { json?: boolean }) => {
      if (opts.json) {
        out(`${JSON.stringify(libraryJson(), null, 2)}\n`);
        return;
      }
      const names = Object.keys(PLAN_LIBRARY);
      const width = Math.max(...names.map((n) => n.length));
      for (const name of names) out(`${name.padEnd(width)}  ${PLAN_LIBRARY[name]!.description}\n`);
    });

  const build = plans
    .command('build')
    .description('print a library plan as JSON (see `plans build <name> --help` for its options)')
    .usage('<name> [options]');
  for (const [name, entry] of Object.entries(PLAN_LIBRARY)) addPlanCommand(build, name, entry, out);
  listKnownOnUnknown(build, 'plan');
  return applyConventions(plans, io);
}

function addPlanCommand(build: Command, name: string, entry: LibraryPlan, out: (t: string) => void): void {
  const cmd = build.command(name).description(entry.description);
  for (const o of entry.options) {
    const isBool = o.placeholder === '[bool]';
    const flags = isBool ? `--${o.flag} [bool]` : `--${o.flag} ${o.placeholder}`;
    // Defaults are shown in the description rather than set on commander, so that the action sees only
    // what the user typed and every value goes through the option's own parser.
    cmd.addOption(new Option(flags, `${o.description} (default: ${o.defaultText ?? o.format(o.default)})`));
  }
  cmd.option('-o, --output <file>', 'write the plan to a file instead of stdout');
  cmd.option('--compact', 'print the JSON on one line');
  cmd.action((raw: Record<string, string | boolean | undefined>, self: Command) => {
    const given: Record<string, unknown> = {};
    for (const o of entry.options) {
      const v = raw[o.key];
      if (v === undefined) continue;
      given[o.key] = parseOption(o, v, self);
    }
    let plan;
    try {
      plan = entry.build(given);
    } catch (e) {
      // Values that parse but do not fit together (e.g. min_reports above target_clients) are usage errors too.
      if (
        e instanceof AppError &&
        (e.code === 'BAD_REQUEST' ||
          e.code === 'PLAN_TYPE_ERROR' ||
          e.code === 'PLAN_SCHEMA_INVALID' ||
          e.code === 'PLAN_OUT_OF_BOUNDS')
      ) {
        self.error(`cannot build ${name}: ${e.message}`, {
          exitCode: USAGE_EXIT_CODE,
          code: 'roundhouse.invalidOption',
        });
      }
      throw e;
    }
    const text = `${JSON.stringify(plan, null, raw.compact ? undefined : 2)}\n`;
    if (typeof raw.output === 'string') fs.writeFileSync(raw.output, text);
    else out(text);
  });
}

function parseOption(o: NamedOption, v: string | boolean, cmd: Command): unknown {
  if (v === true) {
    if (o.placeholder === '[bool]') return true;
    cmd.error(`option --${o.flag} needs a value`, {
      exitCode: USAGE_EXIT_CODE,
      code: 'roundhouse.invalidOption',
    });
  }
  try {
    return o.parse(String(v));
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return cmd.error(`option --${o.flag}: ${why}`, {
      exitCode: USAGE_EXIT_CODE,
      code: 'roundhouse.invalidOption',
    });
  }
}

/** The library as data: names, descriptions and options with their defaults. */
function libraryJson(): unknown {
  return Object.entries(PLAN_LIBRARY).map(([name, p]) => ({
    name,
    description: p.description,
    options: p.options.map((o) => ({
      flag: `--${o.flag}`,
      description: o.description,
      default: o.defaultText ?? o.format(o.default),
    })),
  }));
}
