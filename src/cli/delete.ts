import { Command } from 'commander';
import { loadOperatorConfig } from './cli-config';
import { operatorApi, withServerOptions } from './operator-client';

/**
 * `roundhouse delete <plan-id>`: deletes a cancelled, completed or failed plan with every Redis key of it;
 * an active or paused plan fails with PLAN_ACTIVE (cancel it first).
 */
export function deleteCommand(): Command {
  return withServerOptions(
    new Command('delete')
      .description('delete a cancelled, completed or failed plan and every Redis key of it')
      .argument('<plan-id>', 'the plan to delete'),
  ).action(async (planId: string, opts: { server?: string; token?: string }) => {
    const deleted = await operatorApi(loadOperatorConfig(opts)).call(`DELETE /v1/plans/${planId}`, (api) =>
      api.delete(planId),
    );
    process.stdout.write(`deleted plan ${deleted.id} (${deleted.keys} Redis keys)\n`);
  });
}
