import type { Command, CommanderError } from 'commander';

/**
 * The exit codes of every `roundhouse` command: 0 done, 1 the work failed (server error, unreadable file,
 * bad data), 2 the command line itself was wrong (BSD sysexits' EX_USAGE tradition), so that scripts can
 * tell "fix the invocation" from "retry or investigate".
 */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

// Commander reports these with exit code 1; they are all mistakes in the command line, so they exit with 2.
const USAGE_ERRORS: ReadonlySet<string> = new Set([
  'commander.unknownOption',
  'commander.unknownCommand',
  'commander.missingArgument',
  'commander.optionMissingArgument',
  'commander.missingMandatoryOptionValue',
  'commander.invalidArgument',
  'commander.excessArguments',
  'commander.conflictingOption',
  'roundhouse.invalidOption',
]);

/** The exit code for a commander error under the convention of {@link EXIT}. */
export function exitCodeOf(e: CommanderError): number {
  if (USAGE_ERRORS.has(e.code)) return EXIT.usage;
  // A command with subcommands run without one prints its help to stderr with 1: a usage mistake too.
  if (e.code === 'commander.help' && e.exitCode !== 0) return EXIT.usage;
  return e.exitCode;
}

/** Where a command writes and how it exits; tests replace them to run the program in-process. */
export interface CliIo {
  /** Standard output (results, listings, help). */
  readonly out?: (text: string) => void;
  /** Standard error (errors). */
  readonly err?: (text: string) => void;
  /** Ends the process; called after help, `--version` or a usage error. */
  readonly exit?: (code: number) => never;
}

/** {@link CliIo} with the process's streams and `process.exit` where the caller gave none. */
export function resolveIo(io: CliIo = {}): Required<CliIo> {
  return {
    out: io.out ?? ((t: string) => void process.stdout.write(t)),
    err: io.err ?? ((t: string) => void process.stderr.write(t)),
    exit: io.exit ?? ((code: number): never => process.exit(code)),
  };
}

/**
 * Applies the output, the exit-code convention and the unknown-name message to `cmd` and every command below
 * it. Commander copies these settings only into subcommands made with `.command()`, not into those added
 * with `.addCommand()`, hence the walk.
 */
export function applyConventions(cmd: Command, io: CliIo = {}): Command {
  const { out, err, exit } = resolveIo(io);
  cmd
    .configureOutput({ writeOut: out, writeErr: err })
    .exitOverride((e: CommanderError) => exit(exitCodeOf(e)));
  if (cmd.commands.length > 0 && !listing.has(cmd)) listKnownOnUnknown(cmd);
  for (const sub of cmd.commands) applyConventions(sub, io);
  return cmd;
}

// Commands that already list their names on an unknown one (`plans build` lists plans, not commands).
const listing = new WeakSet<Command>();

/**
 * Makes an unknown subcommand name fail with the names that exist (commander names only a close match, and
 * often none). The noun is what the names stand for, e.g. `plan` below `plans build`.
 */
export function listKnownOnUnknown(cmd: Command, noun = 'command'): void {
  if (listing.has(cmd)) return;
  listing.add(cmd);
  cmd.on('command:*', (operands: string[]) => {
    const known = cmd.commands.map((c) => c.name()).filter((n) => n !== 'help');
    cmd.error(`error: unknown ${noun} '${operands[0]}'; the ${noun}s are: ${known.join(', ')}`, {
      exitCode: EXIT.usage,
      code: 'commander.unknownCommand',
    });
  });
}
