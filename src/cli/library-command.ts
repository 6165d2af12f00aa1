/**
 * What `plans` and `programs` share: listing a library (names, descriptions, options with their defaults)
 * and `build <name> [options]`, one subcommand per entry whose flags come from the entry's OptionSpecs and
 * whose values go through each option's own parser, so that plans and programs take options alike.
 */
import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import { AppError } from '../errors';
import type { NamedOption } from '../plans';
import { EXIT } from './conventions';

/** An entry of a library the CLI lists and builds: a plan or a program. */
export interface LibraryEntry {
  readonly description: string;
  readonly options: readonly NamedOption[];
  /** Builds the document; missing options take their defaults, bad ones throw AppError. */
  build(options?: Readonly<Record<string, unknown>>): unknown;
}

// Codes of values that parse but do not fit together (min above target, a cohort of one): usage errors too.
const USAGE_CODES: ReadonlySet<string> = new Set([
  'BAD_REQUEST',
  'PLAN_TYPE_ERROR',
  'PLAN_SCHEMA_INVALID',
  'PLAN_OUT_OF_BOUNDS',
  'PROGRAM_PRIVACY_VIOLATION',
]);

/** Prints a library's names and descriptions, one per line, or (`json`) the library as data. */
export function printLibrary(
  library: Readonly<Record<string, LibraryEntry>>,
  out: (t: string) => void,
  json: boolean | undefined,
): void {
  if (json) {
    out(`${JSON.stringify(libraryJson(library), null, 2)}\n`);
    return;
  }
  const names = Object.keys(library);
  const width = Math.max(...names.map((n) => n.length));
  for (const name of names) out(`${name.padEnd(width)}  ${library[name]!.description}\n`);
}

/** The library as data: names, descriptions and options with their defaults. */
export function libraryJson(library: Readonly<Record<string, LibraryEntry>>): unknown {
  return Object.entries(library).map(([name, p]) => ({
    name,
    description: p.description,
    options: p.options.map((o) => ({
      flag: `--${o.flag}`,
      description: o.description,
      default: o.defaultText ?? o.format(o.default),
    })),
  }));
}

/**
 * Adds `name` below `build`: its options as flags (defaults shown in the help, not set on commander, so that
 * the action sees only what the user typed and every value goes through its option's parser), `-o` and
 * `--compact`; the action prints the built document's JSON.
 */
export function addBuildCommand(
  build: Command,
  name: string,
  entry: LibraryEntry,
  out: (t: string) => void,
  what: string,
): void {
  const cmd = build.command(name).description(entry.description);
  for (const o of entry.options) {
    const isBool = o.placeholder === '[bool]';
    const flags = isBool ? `--${o.flag} [bool]` : `--${o.flag} ${o.placeholder}`;
    cmd.addOption(new Option(flags, `${o.description} (default: ${o.defaultText ?? o.format(o.default)})`));
  }
  cmd.option('-o, --output <file>', `write the ${what} to a file instead of stdout`);
  cmd.option('--compact', 'print the JSON on one line');
  cmd.action((raw: Record<string, string | boolean | undefined>, self: Command) => {
    const doc = buildEntry(name, entry, parseGiven(entry.options, raw, self), self);
    const text = `${JSON.stringify(doc, null, raw.compact ? undefined : 2)}\n`;
    if (typeof raw.output === 'string') fs.writeFileSync(raw.output, text);
    else out(text);
  });
}

/** The options the user typed, each parsed by its spec; a bad value is a usage error naming the flag. */
export function parseGiven(
  options: readonly NamedOption[],
  raw: Readonly<Record<string, unknown>>,
  cmd: Command,
): Record<string, unknown> {
  const given: Record<string, unknown> = {};
  for (const o of options) {
    const v = raw[o.key];
    if (v === undefined) continue;
    given[o.key] = parseOption(o, v as string | boolean, cmd);
  }
  return given;
}

/** Builds an entry; options that parse but do not fit together are a usage error too. */
export function buildEntry(
  name: string,
  entry: LibraryEntry,
  given: Readonly<Record<string, unknown>>,
  cmd: Command,
): unknown {
  try {
    return entry.build(given);
  } catch (e) {
    if (e instanceof AppError && USAGE_CODES.has(e.code)) {
      // The message lists the details (AppError puts them there).
      cmd.error(`cannot build ${name}: ${e.message}`, {
        exitCode: EXIT.usage,
        code: 'roundhouse.invalidOption',
      });
    }
    throw e;
  }
}

function parseOption(o: NamedOption, v: string | boolean, cmd: Command): unknown {
  if (v === true) {
    if (o.placeholder === '[bool]') return true;
    cmd.error(`option --${o.flag} needs a value`, {
      exitCode: EXIT.usage,
      code: 'roundhouse.invalidOption',
    });
  }
  try {
    return o.parse(String(v));
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return cmd.error(`option --${o.flag}: ${why}`, {
      exitCode: EXIT.usage,
      code: 'roundhouse.invalidOption',
    });
  }
}
