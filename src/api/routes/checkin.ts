import { randomInt } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import planSchema from '../../../schemas/plan.schema.json';
import { AppError } from '../../errors';
import { scheduleOf } from '../../plan/schedule';
import { retryWindow } from '../../rounds/pace';
import { signTaskToken } from '../../rounds/tokens';
import { secAggSetting } from '../../secagg/setup';
import { newTaskId } from '../../store/ids';
import { roundTag } from '../../store/types';
import type { RouteDeps } from '../deps';
import { checkinCredential } from '../devices/credential';
import { readJsonBody } from '../middleware/json-body';
import { bodyChecker } from '../middleware/validate';
import { sendJsonText, type RawRoute } from '../raw-routes';
import { resourceBase } from '../resource-base';
import { selectionNeed, SelectionNeedMemo } from '../selection-need';
import { joinProgram } from './sessions';
import type { SessionGrant } from '../../stateful/wire';

/** A population name: the plan schema's pattern and length, so that a name never makes an odd Redis key. */
const POPULATION = new RegExp(planSchema.properties.population.pattern);
const POPULATION_MAX = planSchema.properties.population.maxLength;

/** Check-in bodies are a few fields; anything bigger is not a check-in. */
const CHECKIN_BODY_LIMIT = 16 * 1024;

/** The answer to a check-in. */
export type CheckinResponse =
  | {
      assignment: {
        plan_id: string;
        task_id: string;
        round: number;
        attempt: number;
        client_plan_url: string;
        broadcast_url: string;
        upload_url: string;
        token: string;
        /** The reporting deadline, unix ms (also the token's `exp`). */
        deadline: number;
        /**
         * Present when the round masks its secure sums: the protocol, and where the task polls for its next
         * step of the exchange (`GET`) and sends each step (`POST .../keys`, `.../shares`, `.../unmask`).
         */
        secure_aggregation?: { protocol: 'secagg+' | 'secagg'; url: string };
      };
    }
  | { session: SessionGrant }
  | { retry: { min_seconds: number; max_seconds: number } };

/** How long a process trusts its read of a population's recruiting programs (ms). */
const RECRUITING_MEMO_MS = 1000;

/**
 * `POST /v1/populations/{population}/checkin`: admits the source (anonymous mode's rate limit, 429),
 * verifies the device credential (401), records the check-in (for the rate), tries the population's plans in
 * a random order (so that concurrent plans share the population), and answers the first assignment, or a
 * retry window sized by pace steering. The assignment's URLs are absolute, on `PUBLIC_URL` or else on the
 * host the request named (`resourceBase`). A device holds at most one task per round attempt: a device that
 * holds one it has not uploaded gets that task again (its first answer may have been lost), one that
 * uploaded gets a retry window. An unknown population gets a retry window too: its clients may arrive before
 * its first plan does.
 */
export function checkinRoute(deps: RouteDeps): RawRoute {
  const { store, plans, config, metrics, devices } = deps;
  const memo = new SelectionNeedMemo();
  // A population's recruiting programs, read at most once a second per process: check-ins of populations
  // without programs pay nothing more than a map lookup.
  const recruiting = new Map<string, { at: number; ids: string[] }>();
  const recruitingIn = async (population: string, now: number): Promise<string[]> => {
    const hit = recruiting.get(population);
    if (hit && now - hit.at < RECRUITING_MEMO_MS) return hit.ids;
    const ids = await deps.programs!.recruitingIn(population);
    if (recruiting.size > 10_000) recruiting.clear();
    recruiting.set(population, { at: now, ids });
    return ids;
  };

  /** Before the body is read: a source over its limit costs one Redis call. */
  const admit = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // The connection's address: req.ip with express's `trust proxy` off, as this app has it.
    const admission = await devices.admit(req.socket.remoteAddress ?? '');
    if (admission.allowed) return;
    metrics.checkins.inc({ outcome: 'rate_limited' });
    res.setHeader('Retry-After', String(admission.retryAfterS));
    throw new AppError(
      'RATE_LIMITED',
      `too many check-ins from this address; retry in ${admission.retryAfterS} s`,
      [{ path: 'source', message: 'over the per-address check-in limit (ANONYMOUS_RATE_LIMIT)' }],
    );
  };
  const checkBody = bodyChecker('checkin-request.schema.json');

  return {
    method: 'POST',
    route: '/v1/populations/:population/checkin',
    async handle(req, res, params) {
      await admit(req, res);
      const body = await readJsonBody(req, res, {
        limit: CHECKIN_BODY_LIMIT,
        tooLarge: 'REQUEST_INVALID',
        optional: true,
      });
      checkBody(body);
      const population = params.population!;
      if (population.length > POPULATION_MAX || !POPULATION.test(population)) {
        throw new AppError('REQUEST_INVALID', `"${population.slice(0, 64)}" is not a population name`, [
          {
            path: 'population',
            message: `must match ${POPULATION.source}, at most ${POPULATION_MAX} characters`,
          },
        ]);
      }
      // Before anything is recorded or assigned: a Host that cannot make URLs must not cost a task.
      const base = resourceBase(req, config);
      const { credential, where } = checkinCredential(req, body, devices.mode);
      const device = await devices.verify(credential, where);
      const served = servedRounds(body);
      const now = deps.now();
      // One step reads the population's plans and records the check-in for pace steering (only populations
      // with plans keep a rate: a client must not create Redis keys by naming populations).
      const { plans: published, rate } = await store.recordCheckin(population, now);
      const ids = shuffled(published);

      for (const id of ids) {
        const loaded = await plans.get(id);
        if (!loaded) continue;
        // A device that says it uploaded to this plan's round already gets no task of it (another attempt).
        const assigned = await store.tryAssign(id, newTaskId(), now, device, served.get(id));
        if (!assigned.ok) continue;
        const { ref, task, openedAt } = assigned;
        const deadline =
          assigned.reportingDeadline ?? openedAt + scheduleOf(loaded.checked.plan).reportingDeadlineS * 1000;
        const token = await signTaskToken(config.tokenSecret, {
          plan: ref.plan,
          round: ref.round,
          attempt: ref.attempt,
          task,
          device: assigned.device,
          exp: Math.floor(deadline / 1000),
        });
        const secure = secAggSetting(loaded.checked.plan);
        metrics.checkins.inc({ outcome: 'assigned' });
        const answer: CheckinResponse = {
          assignment: {
            plan_id: ref.plan,
            task_id: task,
            round: ref.round,
            attempt: ref.attempt,
            client_plan_url: `${base}/v1/plans/${ref.plan}/client-plan`,
            broadcast_url: `${base}/v1/plans/${ref.plan}/rounds/${roundTag(ref)}/broadcast`,
            upload_url: `${base}/v1/tasks/${task}/result`,
            token,
            deadline,
            ...(secure
              ? { secure_aggregation: { protocol: secure.protocol, url: `${base}/v1/tasks/${task}/secagg` } }
              : {}),
          },
        };
        sendJsonText(res, JSON.stringify(answer));
        return;
      }

      // No task: a device may join a recruiting program's cohort instead (docs/stateful.md).
      if (deps.programs) {
        const programIds = await recruitingIn(population, now);
        const grant = programIds.length
          ? await joinProgram({ ...deps, programs: deps.programs }, programIds, device, base)
          : undefined;
        if (grant) {
          metrics.checkins.inc({ outcome: 'session' });
          sendJsonText(res, JSON.stringify({ session: grant } satisfies CheckinResponse));
          return;
        }
      }

      const need = await memo.get(population, now, () => selectionNeed(store, plans, ids, now));
      const retry = retryWindow({
        checkinRate: rate,
        need: need.need,
        secondsUntilNeeded: need.secondsUntilNeeded,
        minSeconds: config.retryMinSeconds,
        maxSeconds: config.retryMaxSeconds,
        rateCap: config.checkinRateCap,
      });
      metrics.checkins.inc({ outcome: 'retry' });
      sendJsonText(res, JSON.stringify({ retry } satisfies CheckinResponse));
    },
  };
}

/** The body's `served` hint (schema-validated) as plan id -> highest round served. */
function servedRounds(body: unknown): Map<string, number> {
  const served = new Map<string, number>();
  for (const s of (body as { served?: { plan_id: string; round: number }[] } | undefined)?.served ?? []) {
    served.set(s.plan_id, Math.max(s.round, served.get(s.plan_id) ?? 0));
  }
  return served;
}

/** A uniformly shuffled copy (Fisher-Yates). */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
