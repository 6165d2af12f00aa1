import { Router, type Request } from 'express';
import { AppError } from '../../errors';
import { bearerToken, verifyTaskToken, type TaskClaims } from '../../rounds/tokens';
import { SHARE_BYTES } from '../../secagg/crypto';
import {
  fromBase64Url,
  type R0Advertise,
  type R1Shares,
  type R3Unmask,
  type SecAggStep,
} from '../../secagg/protocol';
import { checkAdvertise, checkShares } from '../../secagg/protocol-server';
import { cohortGraph, secAggTimeoutsMs } from '../../secagg/setup';
import type { RoundRef, SecAggRefusal, SecAggView } from '../../store/types';
import type { RouteDeps } from '../deps';
import { checkUploadDevice } from '../devices/upload-binding';
import { jsonBody } from '../middleware/json-body';
import { validateBody } from '../middleware/validate';
import { PhaseWatch } from '../phase-watch';
import { intParam } from '../query';

/** SecAgg messages are small: 255 shares of at most 512 characters, and their JSON. */
const BODY_LIMIT = 256 * 1024;

/**
 * How long a client that does not hold its poll (no `wait`) waits before asking again while the others
 * catch up (ms); the SDK adds jitter.
 */
const WAIT_MS = 500;

/** The longest a poll is held (`wait`, seconds), as a session's long poll. */
export const MAX_WAIT_S = 30;

/**
 * The client side of a round's SecAgg+ exchange (docs/server.md, "Secure aggregation"), authorized by the
 * task token like the upload: `GET /v1/tasks/{task}/secagg` tells the task its next step (and hands it what
 * the step needs: its neighbours' public keys in R1, the ciphertexts addressed to it in R2, who survived in
 * R3), and one POST per step records it (R0 keys, R1 shares, R3 unmasking shares). The masked input itself
 * (R2) goes to the upload route. Clients keep nothing the server relies on beyond their task: they poll,
 * and with `?wait=` the server holds a `wait` step until the attempt's phase moves on (`PhaseWatch`).
 */
export function secAggRoutes(deps: RouteDeps): Router {
  const { store, jobs, plans, log, heldPolls } = deps;
  const router = Router();
  const watch = new PhaseWatch((ref) => store.secagg.phase(ref));
  const body = jsonBody({ limit: BODY_LIMIT, tooLarge: 'REQUEST_INVALID' });

  /** The token's claims and the attempt's exchange as the task sees it; 409 SECAGG_OFF without one. */
  async function authorize(req: Request): Promise<{ claims: TaskClaims; ref: RoundRef; view: SecAggView }> {
    const claims = await verifyTaskToken(
      deps.config.tokenSecret,
      bearerToken(req.get('authorization')),
      deps.now(),
      (c) => store.secagg.deadline({ plan: c.plan, round: c.round, attempt: c.attempt }, deps.now()),
    );
    if (claims.task !== req.params.task) {
      throw new AppError('TOKEN_TASK_MISMATCH', 'the task token was issued for another task', [
        { path: 'task', message: 'the path names a task the token does not authorize' },
      ]);
    }
    const ref: RoundRef = { plan: claims.plan, round: claims.round, attempt: claims.attempt };
    // The device binding is checked while the attempt keeps its round key (until reporting closes).
    await checkUploadDevice(deps.devices, req, claims, await store.roundKey(ref));
    const view = await store.secagg.view(ref, claims.task);
    if (!view)
      throw new AppError('SECAGG_OFF', `round ${claims.round}.${claims.attempt} runs no secure aggregation`);
    return { claims, ref, view };
  }

  router.get('/v1/tasks/:task/secagg', async (req, res) => {
    // The app parses no query strings (app.ts): this route reads its one parameter itself.
    const query = new URL(req.url, 'http://query').searchParams;
    const waitS = Math.min(intParam(query.get('wait') ?? undefined, 'wait', 0), MAX_WAIT_S);
    const first = await authorize(req);
    let { ref, view } = first;
    let step = await nextStep(ref, view);
    // Past the process's bounds on held polls (src/api/held-polls.ts) the step is answered at once.
    const release =
      step.step === 'wait' && waitS > 0 ? heldPolls.take(`task:${first.claims.task}`) : undefined;
    if (release) {
      try {
        // Held until the attempt's phase moves on, which is when the answer can change.
        const until = Date.now() + waitS * 1000;
        const gone = new AbortController();
        res.on('close', () => gone.abort());
        for (;;) {
          const phase = await watch.changed(ref, view.phase, until, gone.signal);
          if (gone.signal.aborted) return;
          if (phase === view.phase) {
            // Held to the end: ask again at once.
            step = { step: 'wait', retry_after_ms: 0 };
            break;
          }
          // Looked at afresh, token and device included: the exchange moved on.
          ({ ref, view } = await authorize(req));
          step = await nextStep(ref, view);
          if (step.step !== 'wait') break;
        }
      } finally {
        release();
      }
    }
    res.set('Cache-Control', 'no-store').json(step);
  });

  async function nextStep(ref: RoundRef, view: SecAggView): Promise<SecAggStep> {
    const { phase, index } = view;
    const wait: SecAggStep = { step: 'wait', retry_after_ms: WAIT_MS };
    if (phase === 'failed') return { step: 'dropped', reason: 'the round attempt failed' };
    // The exchange's state goes with the attempt once it completes: nothing is left to do for anyone.
    if (phase === 'completed') return { step: 'done' };
    if (index === undefined) {
      return phase === 'selecting'
        ? { step: 'advertise' }
        : { step: 'dropped', reason: 'no keys advertised in time' };
    }
    if (phase === 'selecting') return wait;
    let cohort: ReturnType<typeof cohortGraph>;
    try {
      cohort = cohortGraph(view.setup, view.n);
    } catch (e) {
      // A cohort no graph can protect (the finder refuses it): nobody shares, and the round fails at its
      // sharing deadline rather than masking inputs that could not be recovered safely.
      if (e instanceof AppError) return { step: 'dropped', reason: e.message };
      throw e;
    }
    const { graph, threshold } = cohort;
    const hood = graph.neighbourhood(index);
    const [inU2] = await store.secagg.members(ref, 'shared', [index]);
    if (phase === 'sharing') {
      if (inU2) return wait;
      const keys = await store.secagg.publicKeys(ref, hood);
      return {
        step: 'share',
        session: view.setup.session,
        index,
        n: view.n,
        degree: graph.degree,
        threshold,
        neighbours: hood.flatMap((j) => {
          const k = keys.get(j);
          return k ? [{ index: j, c: k.c, s: k.s }] : [];
        }),
      };
    }
    if (!inU2) return { step: 'dropped', reason: 'no key shares sent in time' };
    const [uploaded] = await store.secagg.members(ref, 'uploaded', [index]);
    if (phase === 'reporting') {
      if (uploaded) return wait;
      const shared = await store.secagg.members(ref, 'shared', hood);
      return {
        step: 'upload',
        shares: await store.secagg.inbox(
          ref,
          index,
          hood.filter((_, at) => shared[at]),
        ),
        secure_params: view.setup.params,
        n_max: view.setup.n_max,
      };
    }
    if (!uploaded) return { step: 'dropped', reason: 'no masked input accepted in time' };
    if (phase !== 'closed') return { step: 'done' };
    const [answered] = await store.secagg.members(ref, 'answered', [index]);
    if (answered) return { step: 'done' };
    const [shared, survived] = await Promise.all([
      store.secagg.members(ref, 'shared', hood),
      store.secagg.members(ref, 'uploaded', hood),
    ]);
    return {
      step: 'unmask',
      survivors: hood.filter((_, at) => shared[at] && survived[at]),
      dropped: hood.filter((_, at) => shared[at] && !survived[at]),
    };
  }

  router.post(
    '/v1/tasks/:task/secagg/keys',
    body,
    validateBody('secagg-keys.schema.json'),
    async (req, res) => {
      const { claims, ref } = await authorize(req);
      const now = deps.now();
      const message = req.body as R0Advertise;
      checkAdvertise(message); // a low-order key would make every neighbour's exchange fail
      const r = await store.secagg.advertise(ref, claims.task, message.keys, now);
      if (!r.ok) throw refused(r.code, r.detail);
      if (r.ended) {
        // This advertisement fixed the cohort: the sharing deadline starts now (the reconciler would see it too).
        const loaded = await plans.get(ref.plan);
        if (loaded)
          await jobs.deadlines(ref, { sharing: now + secAggTimeoutsMs(loaded.checked.plan).sharing });
      }
      res.json({ index: r.index });
    },
  );

  router.post(
    '/v1/tasks/:task/secagg/shares',
    body,
    validateBody('secagg-shares.schema.json'),
    async (req, res) => {
      const { claims, ref, view } = await authorize(req);
      if (view.index === undefined) throw refused('SECAGG_NOT_IN_COHORT');
      // A retry whose first try was stored (its answer lost) hears so, even once the exchange moved on.
      const [sent] = await store.secagg.members(ref, 'shared', [view.index]);
      if (sent) throw refused('SECAGG_ALREADY_SENT');
      if (view.phase !== 'sharing') throw refused('SECAGG_PHASE', view.phase);
      const message = req.body as R1Shares;
      const { graph } = cohortGraph(view.setup, view.n);
      // One sealed envelope of the right size to each member of the neighbourhood, itself included.
      checkShares(view.index, message, (i) => graph.neighbourhood(i));
      if (message.shares.length !== graph.neighbourhood(view.index).length) {
        throw new AppError(
          'SECAGG_WRONG_SHARE',
          'send exactly one ciphertext to each member of your neighbourhood',
        );
      }
      const shares = message.shares;
      const r = await store.secagg.share(ref, claims.task, shares, deps.now());
      if (!r.ok) throw refused(r.code, r.detail);
      res.json({ stored: true });
    },
  );

  router.post(
    '/v1/tasks/:task/secagg/unmask',
    body,
    validateBody('secagg-unmask.schema.json'),
    async (req, res) => {
      const { claims, ref, view } = await authorize(req);
      if (view.index === undefined) throw refused('SECAGG_NOT_SURVIVOR');
      const step = await nextStep(ref, view);
      if (step.step !== 'unmask') {
        if (step.step === 'done') throw refused('SECAGG_ALREADY_SENT');
        throw refused('SECAGG_PHASE', view.phase);
      }
      const shares = (req.body as R3Unmask).shares;
      // Stored as given, combined only by the finalizer: each must be a share, or unmasking would fail late.
      shares.forEach((s, m) => fromBase64Url(s.share, SHARE_BYTES, `/shares/${m}/share`));
      const expected = [...step.survivors, ...step.dropped].sort((a, b) => a - b);
      const given = shares.map((s) => s.of).sort((a, b) => a - b);
      if (given.length !== expected.length || given.some((of, at) => of !== expected[at])) {
        throw new AppError(
          'SECAGG_WRONG_SHARE',
          'send one share for each neighbour named in the unmask step',
          [{ path: '/shares', message: `expected shares of ${expected.join(',')}, got ${given.join(',')}` }],
        );
      }
      const r = await store.secagg.unmask(ref, claims.task, shares);
      if (!r.ok) throw refused(r.code, r.detail);
      if (r.answered >= r.reported) {
        try {
          await jobs.finalize(ref);
        } catch (err) {
          // The reconciler queues it again; the answer is stored.
          log.warn({ err, plan: ref.plan }, 'could not queue finalize after the last unmasking answer');
        }
      }
      res.json({ stored: true });
    },
  );

  return router;
}

const MESSAGES: Record<SecAggRefusal, string> = {
  TASK_UNKNOWN: 'the task is not part of this round attempt',
  SECAGG_OFF: 'the round attempt runs no secure aggregation',
  SECAGG_KEYS_CHANGED: 'the task advertised other keys before',
  SECAGG_PHASE: 'the round attempt is not at this step',
  SECAGG_NOT_IN_COHORT: 'the task is not in the cohort of this step',
  SECAGG_ALREADY_SENT: 'the task already sent this step',
  SECAGG_NOT_SURVIVOR: 'the task has no accepted masked input',
  SECAGG_WRONG_SHARE: 'a share is of a client outside the exchange, or of the wrong kind',
};

function refused(code: SecAggRefusal, detail?: string): AppError {
  const message = MESSAGES[code] + (detail ? ` (${detail})` : '');
  return new AppError(code === 'TASK_UNKNOWN' ? 'TOKEN_TASK_MISMATCH' : code, message);
}
