import { Command } from 'commander';
import { dataCommand } from './data';
import { deleteCommand } from './delete';
import { demoCommand } from './demo';
import { plansCommand } from './plans';
import { runLocalCommand } from './run-local';
import { simulateCommand } from './simulate';
import { startCommand } from './start';
import { statusCommand } from './status';
import { submitCommand } from './submit';
import { validateCommand } from './validate';
import { workerCommand } from './worker';

/** The `roundhouse` command line. */
export function program(): Command {
  return new Command('roundhouse')
    .description('Roundhouse: a stateless MapReduce-form round server for federated computation')
    .addCommand(startCommand())
    .addCommand(workerCommand())
    .addCommand(submitCommand())
    .addCommand(validateCommand())
    .addCommand(statusCommand())
    .addCommand(deleteCommand())
    .addCommand(plansCommand())
    .addCommand(simulateCommand())
    .addCommand(runLocalCommand())
    .addCommand(dataCommand())
    .addCommand(demoCommand());
}

/** Entry point of bin/roundhouse.js. */
export async function main(argv: readonly string[]): Promise<void> {
  await program().parseAsync([...argv]);
}
