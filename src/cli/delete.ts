import { Command } from 'commander';
import { loadOperatorConfig } from './cli-config';
import { operatorApi } from './operator-client';

/**
 * `roundhouse delete <plan-id>`: deletes a cancelled, completed or failed plan with every Redis key of it;
 * an active or paused plan fails with PLAN_ACTIVE (cancel it first).
 */
export function deleteCommand(): Command {
  return new Command('delete')
    .description('delete a cancelled, completed or failed plan and every Redis key of it')
    .argument('<plan-id>', 'the plan to delete')
    .option('--server <url>', 'server URL (default: ROUNDHOUSE_URL, else http://127.0.0.1:8080)')
    .option('--token <token>', 'operator token (default: OPERATOR_TOKEN)')
    .action(async (planId: string, opts: { server?: string; token?: string }) => {
      const deleted = await operatorApi(loadOperatorConfig(opts)).call(`DELETE /v1/plans/${planId}`, (api) =>
        api.delete(planId),
      );
      process.stdout.write(`deleted plan ${deleted.id} (${deleted.keys} Redis keys)\n`);
    });
}
