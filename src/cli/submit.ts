import { Command } from 'commander';
import { loadOperatorConfig } from './cli-config';
import { operatorApi, withServerOptions } from './operator-client';
import { readJsonFile } from './read-file';

/**
 * `roundhouse submit plan.json`: posts a plan to the server and prints its id on stdout. A rejected plan
 * fails with the server's code and every problem it found, one per line.
 */
export function submitCommand(): Command {
  return withServerOptions(
    new Command('submit')
      .description('submit a plan to the server and print its id')
      .argument('<plan>', 'plan JSON file (- reads stdin), for example from `roundhouse plans build`'),
  )
    .option('--json', 'print the plan summary as JSON instead of the id')
    .action(async (file: string, opts: { server?: string; token?: string; json?: boolean }) => {
      const plan = readJsonFile(file, 'plan');
      const summary = await operatorApi(loadOperatorConfig(opts)).call('POST /v1/plans', (api) =>
        api.submit(plan),
      );
      process.stdout.write(opts.json ? `${JSON.stringify(summary, null, 2)}\n` : `${summary.id}\n`);
    });
}
