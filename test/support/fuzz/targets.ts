/**
 * The plans the upload fuzz aims at, and the check-ins that give it real tasks: one plan per update shape
 * (float and int plain sums, secure sums with bitwidth and max_input, a multi-leaf model), each on a
 * population of its own with a small round, so that accepted fuzz uploads close rounds and the finalizer
 * meets them too.
 */
import { randomBytes } from 'node:crypto';
import { bundleLeaves, writeBundle } from '../../../src/codec';
import type { TffType } from '../../../src/compute/types';
import type { Schedule } from '../../../src/generated/plan';
import { PLAN_LIBRARY } from '../../../src/plans';
import type { Cluster } from '../cluster';
import { vectorSumPlan } from '../plans';
import type { FuzzDriver } from './driver';
import type { HeldTask, UploadTarget } from './uploads';

/** Tasks a round of a target hands out (target_clients with no over-selection). */
export const TASKS_PER_ROUND = 3;

const SCHEDULE = {
  rounds: 1_000,
  target_clients: TASKS_PER_ROUND,
  over_selection: 1,
  min_reports: 1,
  min_clients_in_aggregate: 1,
  selection_timeout_s: 600,
  reporting_deadline_s: 600,
};

function plansToTarget(tag: string): Array<{ name: string; plan: Record<string, unknown> }> {
  const lib = (name: string, options: Record<string, unknown>) =>
    PLAN_LIBRARY[name]!.build(options) as unknown as Record<string, unknown>;
  return [
    { name: 'vector-sum', plan: vectorSumPlan(4, SCHEDULE) },
    { name: 'federated-sum', plan: lib('federated-sum', {}) },
    // Secure sums in the clear, so that the fuzz's plain uploads meet the server's range checks.
    {
      name: 'federated-secure-sum',
      plan: lib('federated-sum', { secure: true, secureAggregation: 'none', bitwidth: 8 }),
    },
    {
      name: 'histogram-secure',
      plan: lib('histogram', { bins: 4, secure: true, secureAggregation: 'none', maxInput: 5 }),
    },
    { name: 'mean', plan: lib('mean', {}) },
    { name: 'fedavg', plan: lib('fedavg', { layers: [4, 3, 2], epochs: 1 }) },
  ].map(({ name, plan }) => ({
    name,
    plan: {
      ...plan,
      population: `${tag}-${name}`,
      schedule: { ...SCHEDULE, secure_aggregation: (plan.schedule as Schedule).secure_aggregation },
    },
  }));
}

/**
 * A check-in body naming a device in anonymous mode: `device_id`, and `client_id`, its older name. The
 * upload presents the device again in `X-Device-Credential`.
 */
export function checkinBody(device: string): string {
  return JSON.stringify({ client_id: device, device_id: device });
}

/** Submits the target plans and reads each one's upload type from its client plan. */
export async function submitTargets(cluster: Cluster, tag: string): Promise<UploadTarget[]> {
  const out: UploadTarget[] = [];
  for (const { name, plan } of plansToTarget(tag)) {
    const res = await cluster.operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    if (res.status !== 201) throw new Error(`target ${name} was refused: ${res.status} ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    const client = (await (await fetch(`${cluster.url}/v1/plans/${id}/client-plan`)).json()) as {
      upload_type: TffType;
    };
    out.push({
      name,
      planId: id,
      population: plan.population as string,
      uploadType: client.upload_type,
      tasks: [],
    });
  }
  return out;
}

/** How long {@link refillTasks} waits for a target's next round to hand out tasks. */
const REFILL_TIMEOUT_MS = 60_000;
/** Pause between check-ins while a target's next round is not open yet. */
const REFILL_POLL_MS = 100;

/**
 * Checks in new devices for a target until it holds a round's worth of tasks, or the round has no more to
 * give once it handed out at least one; the answers go through the driver's property check. While the
 * target's next round is not open yet (its last one is still being finalized), check-ins get a retry window:
 * it polls. It throws when a check-in is refused, or when no task came within REFILL_TIMEOUT_MS, so that
 * the upload fuzz never goes on quietly with spent tasks (their uploads would no longer reach decoding).
 */
export async function refillTasks(driver: FuzzDriver, target: UploadTarget): Promise<void> {
  const fresh: HeldTask[] = [];
  const deadline = Date.now() + REFILL_TIMEOUT_MS;
  while (fresh.length < TASKS_PER_ROUND) {
    const device = `fuzz-device-${randomBytes(6).toString('hex')}`;
    const answer = await driver.send({
      method: 'POST',
      path: `/v1/populations/${target.population}/checkin`,
      headers: { 'content-type': 'application/json' },
      body: checkinBody(device),
      label: `check-in for target ${target.name}`,
    });
    if (answer?.status !== 200) {
      throw new Error(
        `check-in for target ${target.name} was answered ${answer?.status ?? 'not at all'} ${answer?.code ?? ''}`,
      );
    }
    const assignment = (answer.json as { assignment?: Omit<HeldTask, 'device'> } | undefined)?.assignment;
    if (assignment) {
      fresh.push({ ...assignment, device });
      continue;
    }
    // The round handed out what it had: go on with those.
    if (fresh.length > 0) break;
    if (Date.now() > deadline) {
      throw new Error(
        `target ${target.name} (plan ${target.planId}) handed out no task in ${REFILL_TIMEOUT_MS} ms; last answer ${JSON.stringify(answer.json)}`,
      );
    }
    await new Promise((r) => setTimeout(r, REFILL_POLL_MS));
  }
  target.tasks = fresh;
}

/**
 * The upload bundle of a plan whose update is one int32 scalar (the federated-sum plan): `value` in that
 * leaf. Throws when the plan's upload type has another shape, so that a change of the plan shows here.
 */
export function int32ScalarUpload(uploadType: TffType, value: number): Uint8Array {
  const leaves = bundleLeaves(uploadType);
  const [only] = leaves;
  if (leaves.length !== 1 || only!.leaf.type.dtype !== 'int32' || only!.leaf.type.shape.length !== 0) {
    throw new Error(`expected an upload of one int32 scalar, the plan uploads ${JSON.stringify(uploadType)}`);
  }
  return writeBundle([{ name: only!.name, dtype: 'int32', shape: [], data: Int32Array.of(value) }]);
}
