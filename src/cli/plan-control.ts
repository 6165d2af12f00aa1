import { Command } from 'commander';
import type { PlanAction } from '../client/operator';
import type { PlanSummary } from '../store/types';
import { loadOperatorConfig } from './cli-config';
import { operatorApi, withServerOptions } from './operator-client';

/** What each transition does, for its help, and the word its output uses. */
const ACTIONS: Readonly<Record<PlanAction, { readonly description: string; readonly done: string }>> = {
  pause: {
    description: 'pause an active plan: no new rounds open until it is resumed',
    done: 'paused',
  },
  resume: { description: 'resume a paused plan', done: 'resumed' },
  cancel: {
    description: 'cancel an active or paused plan for good (then `roundhouse delete` can remove it)',
    done: 'cancelled',
  },
};

/** The line a transition prints, e.g. `paused plan p0123 (sum): status paused, round 2/3`. */
export function formatTransition(action: PlanAction, plan: PlanSummary): string {
  return (
    `${ACTIONS[action].done} plan ${plan.id} (${plan.name}): status ${plan.status}, ` +
    `round ${plan.round}/${plan.rounds}\n`
  );
}

/**
 * `roundhouse pause|resume|cancel <plan-id>`: the operator transitions of `POST /v1/plans/{id}/{action}`; a
 * transition the plan's status does not allow fails with the server's 409 PLAN_STATE_CONFLICT.
 */
export function planControlCommand(action: PlanAction): Command {
  return withServerOptions(
    new Command(action)
      .description(ACTIONS[action].description)
      .argument('<plan-id>', `the plan to ${action}`),
  ).action(async (planId: string, opts: { server?: string; token?: string }) => {
    const plan = await operatorApi(loadOperatorConfig(opts)).call(
      `POST /v1/plans/${planId}/${action}`,
      (api) => api[action](planId),
    );
    process.stdout.write(formatTransition(action, plan));
  });
}
