import { Command, CommanderError } from 'commander';
import { exitQuietlyOnClosedPipe, isClosedPipe } from './closed-pipe';
import { conformanceCommand } from './conformance';
import { applyConventions, EXIT, exitCodeOf, type CliIo } from './conventions';
import { dataCommand } from './data';
import { deleteCommand } from './delete';
import { demoCommand } from './demo';
import { planControlCommand } from './plan-control';
import { plansCommand } from './plans';
import { programsCommand } from './programs';
import { runLocalCommand } from './run-local';
import { simulateCommand } from './simulate';
import { startCommand } from './start';
import { statusCommand } from './status';
import { submitCommand } from './submit';
import { validateCommand } from './validate';
import { packageVersion } from './version';
import { workCommand } from './work';
import { workerCommand } from './worker';

/**
 * The `roundhouse` command line. Exit codes follow {@link EXIT} (0 ok, 1 failure, 2 usage); an unknown
 * command or plan name fails with the names that exist.
 */
export function program(io: CliIo = {}): Command {
  const cmd = new Command('roundhouse')
    .description('Roundhouse: a stateless MapReduce-form round server for federated computation')
    .version(packageVersion(), '-V, --version', 'print the version of roundhouse')
    .addCommand(startCommand())
    .addCommand(workerCommand())
    .addCommand(submitCommand())
    .addCommand(validateCommand())
    .addCommand(statusCommand())
    .addCommand(planControlCommand('pause'))
    .addCommand(planControlCommand('resume'))
    .addCommand(planControlCommand('cancel'))
    .addCommand(deleteCommand())
    .addCommand(plansCommand(io))
    .addCommand(programsCommand(io))
    .addCommand(simulateCommand(io))
    .addCommand(runLocalCommand())
    .addCommand(dataCommand())
    .addCommand(demoCommand())
    .addCommand(workCommand(io))
    .addCommand(conformanceCommand(io));
  return applyConventions(cmd, io);
}

/**
 * Entry point of bin/roundhouse.js: runs the command, and is the one place that turns a failure into its
 * message on stderr and exit code 1, and a closed stdout into a quiet exit 0.
 */
export async function main(argv: readonly string[]): Promise<void> {
  exitQuietlyOnClosedPipe(process.stdout);
  try {
    await program().parseAsync([...argv]);
  } catch (e) {
    // A synchronous write (the logger's) to a closed pipe: the reader left, nothing failed.
    if (isClosedPipe(e)) process.exit(EXIT.ok);
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    // An action that finds its arguments wrong throws commander's InvalidArgumentError: a usage error too.
    process.exit(e instanceof CommanderError ? exitCodeOf(e) : EXIT.failure);
  }
}
