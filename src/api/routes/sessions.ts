import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LRUCache } from 'lru-cache';
import { Router, type Request } from 'express';
import { AppError } from '../../errors';
import { scheduleOf } from '../../plan/schedule';
import { secAggSetting } from '../../secagg/setup';
import { signTaskToken, bearerToken } from '../../rounds/tokens';
import { newTaskId } from '../../store/ids';
import { checkProgram, type CheckedProgram } from '../../stateful/check';
import { clientProgramOf } from '../../stateful/client-program';
import type {
  ProgramStore,
  ProgramSummary,
  SessionRecord,
  SessionStatus,
  StoredRequest,
} from '../../stateful/server/program-store';
import {
  sessionBinding,
  signSessionToken,
  verifySessionToken,
  type SessionClaims,
} from '../../stateful/server/session-token';
import type { ProgramEvents, ProgramWait } from '../../stateful/server/program-events';
import {
  MAX_POLL_WAIT_S,
  type NumberedRequest,
  type RequestsResponse,
  type SessionGrant,
} from '../../stateful/wire';
import type { RouteDeps } from '../deps';
import { jsonBody } from '../middleware/json-body';
import { validateBody } from '../middleware/validate';
import { sendJsonText, type RawRoute } from '../raw-routes';
import { intParam } from '../query';
import { resourceBase } from '../resource-base';
import { uploadCredential } from '../devices/credential';

/** How often a long poll looks for new requests when no event channel wakes it (ms). */
const POLL_MS = 200;

/** What one look at a program reads, shared by the polls that look in the same turn. */
interface LookResult {
  readonly summary: ProgramSummary | undefined;
  readonly issued: readonly { readonly seq: number; readonly request: StoredRequest }[];
  /** The state of the sessions of the polls that share the look, by id. */
  readonly sessions: ReadonlyMap<string, { readonly status: SessionStatus; readonly answered: number }>;
  /** Answers the polls of the look share, by the session's last answer and URL base (`pollOnce`). */
  readonly shared: Map<string, Polled>;
}

/** A poll's answer, and its text when it is shared with other polls. */
interface Polled {
  readonly body: RequestsResponse;
  readonly text?: string;
}

/** A look not yet sent, and the sessions of the polls that share it. */
interface Look {
  readonly sessions: Set<string>;
  readonly result: Promise<LookResult>;
}

/** Answer bodies are a few small objects per request. */
const ANSWERS_BODY_LIMIT = 256 * 1024;

/**
 * The devices' side of stateful programs (docs/stateful.md, "The session protocol"), session token granted
 * at check-in: the client program and the broadcast values, the long poll for requests, the answers, and
 * leaving. Also `joinProgram`, which the check-in route calls.
 */
export function sessionRoutes(
  deps: RouteDeps & { readonly programs: ProgramStore; readonly programEvents?: ProgramEvents },
): { readonly router: Router; readonly longPoll: RawRoute } {
  const { programs, config, store, heldPolls } = deps;
  const router = Router();
  // Programs never change once submitted, so a checked one is kept, within the plans' bound
  // (PLAN_CACHE_SIZE): a map of every program a long-lived process has served would only grow.
  const checkedCache = new LRUCache<string, { checked: CheckedProgram; clientProgram: string; etag: string }>(
    { max: config.planCacheSize },
  );

  async function loaded(id: string) {
    let c = checkedCache.get(id);
    // A deleted program is served no more, by this process or any other that has it cached.
    if (c && !(await programs.exists(id))) {
      checkedCache.delete(id);
      c = undefined;
    }
    if (!c) {
      const doc = await programs.document(id);
      if (!doc) throw new AppError('PROGRAM_NOT_FOUND', `no program ${id}`);
      const checked = checkProgram(JSON.parse(doc), config.limits);
      const clientProgram = JSON.stringify(clientProgramOf(checked.program));
      const etag = `"${createHash('sha256').update(clientProgram).digest('base64url').slice(0, 22)}"`;
      c = { checked, clientProgram, etag };
      checkedCache.set(id, c);
    }
    return c;
  }

  /** The session the request's token names, for the session in the path; 401/404 otherwise. */
  async function sessionOf(
    req: IncomingMessage,
    sid: string,
  ): Promise<{ claims: SessionClaims; session: SessionRecord }> {
    const claims = await verifySessionToken(
      config.tokenSecret,
      bearerToken(req.headers.authorization),
      deps.now(),
    );
    if (claims.session !== sid) {
      throw new AppError('TOKEN_INVALID', 'the session token is for another session', [
        { path: 'authorization', message: 'session mismatch' },
      ]);
    }
    const session = await programs.session(claims.program, sid);
    if (!session) throw new AppError('SESSION_NOT_FOUND', `no session ${sid}`);
    return { claims, session };
  }
  /** The session token's claims, for the program in the path; 401 otherwise. */
  async function programClaims(req: Request): Promise<SessionClaims> {
    const claims = await verifySessionToken(
      config.tokenSecret,
      bearerToken(req.headers.authorization),
      deps.now(),
    );
    if (claims.program !== req.params.id)
      throw new AppError('TOKEN_INVALID', 'the session token is for another program');
    return claims;
  }

  router.get('/v1/programs/:id/client-program', async (req, res) => {
    const claims = await programClaims(req);
    const { clientProgram, etag } = await loaded(claims.program);
    res.set('ETag', etag).set('Cache-Control', 'private, max-age=3600');
    if (req.headers['if-none-match'] === etag) return void res.status(304).end();
    res.type('application/json').send(clientProgram);
  });

  router.get('/v1/programs/:id/values/:name', async (req, res) => {
    const claims = await programClaims(req);
    const name = req.params.name as string;
    const { checked } = await loaded(claims.program);
    // Only what a broadcast step sends to the devices: other server values stay on the server.
    if (!checked.program.steps.some((s) => s.op === 'broadcast' && s.value === name)) {
      throw new AppError('RESOURCE_NOT_FOUND', `${name} is not a broadcast value of this program`);
    }
    const bytes = await programs.value(claims.program, name);
    if (!bytes) throw new AppError('RESOURCE_NOT_FOUND', `${name} is not computed yet`);
    res
      .type('application/octet-stream')
      .set('Cache-Control', 'private, max-age=3600')
      .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });

  /**
   * The long poll for a session's requests, served on Node's own objects ahead of express
   * (src/api/raw-routes.ts): a cohort's polls are answered together, a thousand on one event.
   */
  const longPoll: RawRoute = {
    route: '/v1/sessions/:session/requests',
    async handle(req, res, params) {
      const { claims } = await sessionOf(req, params.session!);
      // The app parses no query strings (most routes take none): read the two this one takes.
      const query = new URL(req.url ?? '/', 'http://query').searchParams;
      const after = intParam(query.get('after') ?? undefined, 'after', 0);
      const waitS = Math.min(intParam(query.get('wait') ?? undefined, 'wait', 0), MAX_POLL_WAIT_S);
      const base = resourceBase(req, config);
      // Past the process's bounds on held polls (src/api/held-polls.ts) the poll is answered at once.
      const release = waitS > 0 ? heldPolls.take(`session:${params.session!}`) : undefined;
      const until = Date.now() + (release ? waitS * 1000 : 0);
      let wait: ProgramWait | undefined;
      let gone = false;
      res.on('close', () => {
        gone = true;
        wait?.end();
      });
      try {
        for (let first = true; ; first = false) {
          // Armed before looking, so that requests issued while this poll reads Redis wake it.
          const left = until - Date.now();
          wait = left > 0 ? arm(claims.program, left) : undefined;
          const { body, text } = await pollOnce(claims, after, base, first, () => pollDevice(req, claims));
          if (body.requests.length > 0 || body.end || !wait || gone) {
            wait?.end();
            if (!res.writableEnded && !res.destroyed) sendJsonText(res, text ?? JSON.stringify(body));
            return;
          }
          await wait.changed;
        }
      } finally {
        release?.();
      }
    },
  };

  /** A wait that ends when the program may have changed (an event or a timer), or by `end()`. */
  function arm(program: string, ms: number): ProgramWait {
    if (deps.programEvents) return deps.programEvents.arm(program, ms);
    let end!: () => void;
    const changed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(ms, POLL_MS));
      end = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    return { changed, end };
  }

  /**
   * One read of a program (its summary, its requests after `after`, and the state of the sessions of the
   * polls that look) for every poll that looks in the same turn of the event loop: a cohort's polls wake on
   * one event, and each reading the program alone cost three Redis commands a poll (a write each), most of
   * a woken poll's time (bench/sessions.ts). The read is sent on the next turn, so it follows the arming of
   * every poll that shares it, as each poll's own read would.
   */
  const looks = new Map<string, Look>();
  function lookAt(program: string, after: number, session: string): Promise<LookResult> {
    const key = `${program}:${after}`;
    let look = looks.get(key);
    if (!look) {
      const sessions = new Set<string>();
      const result = new Promise<LookResult>((resolve, reject) =>
        setImmediate(() => {
          looks.delete(key);
          read(program, after, [...sessions]).then(resolve, reject);
        }),
      );
      looks.set(key, (look = { sessions, result }));
    }
    look.sessions.add(session);
    return look.result;
  }

  async function read(program: string, after: number, ids: readonly string[]): Promise<LookResult> {
    const [summary, issued, sessions] = await Promise.all([
      programs.get(program),
      programs.requests(program, after),
      programs.sessionStates(program, ids),
    ]);
    return { summary, issued, sessions, shared: new Map() };
  }

  /**
   * The device id of a poll's credential (`X-Device-Credential`, as an upload carries it), checked against
   * the session's binding: a `contribute` request needs it to assign the device its task.
   */
  async function pollDevice(req: IncomingMessage, claims: SessionClaims): Promise<string> {
    const { credential, where } = uploadCredential(req);
    if (credential === undefined) {
      throw new AppError(
        'DEVICE_CREDENTIAL_INVALID',
        'a poll that brings a contribution needs the device credential (X-Device-Credential)',
        [{ path: where, message: 'missing' }],
      );
    }
    const device = await deps.devices.verify(credential, where);
    if (sessionBinding(config.tokenSecret, claims.program, device) !== claims.device) {
      throw new AppError('DEVICE_MISMATCH', "the device credential is not the session's device", [
        { path: where, message: 'another device' },
      ]);
    }
    return device;
  }

  /** One look at a session's state and requests. */
  async function pollOnce(
    claims: SessionClaims,
    after: number,
    base: string,
    first: boolean,
    device: () => Promise<string>,
  ): Promise<Polled> {
    const look = await lookAt(claims.program, after, claims.session);
    const session = look.sessions.get(claims.session);
    if (!session) throw new AppError('SESSION_NOT_FOUND', `no session ${claims.session}`);
    if (session.status !== 'live') {
      // Ended: its code and reason too (rare; the look reads only what live sessions need).
      const ended = await programs.session(claims.program, claims.session);
      return {
        body: {
          requests: [],
          end: {
            status: session.status === 'done' ? 'completed' : session.status,
            ...(ended?.code ? { code: ended.code } : {}),
            ...(ended?.reason ? { reason: ended.reason } : {}),
          },
        },
      };
    }
    const p = look.summary!;
    if (p.status === 'failed' || p.status === 'cancelled') {
      return {
        body: { requests: [], end: { status: 'failed', reason: p.error ?? `the program was ${p.status}` } },
      };
    }
    // The requests after the same answer are the same for every session (one answered by the same URL
    // base), unless one is a contribution, which carries each device's own task: the polls of a look share
    // one body and its text.
    const key = `${session.answered}\n${base}`;
    const shared = look.shared.get(key);
    if (shared) return shared;
    // Requests the server holds answers for are not served again (a device polling from before them).
    const issued = look.issued.filter(({ seq }) => seq > session.answered);
    if (issued.length === 0) {
      // A poll of a session that owes nothing is its contact (one that owes answers must answer), once per
      // poll: while it is held, the requests that go out reach the device at once, and the driver counts a
      // silence from then (driver.ts, timeOutSessions). Not on every look: a cohort's held polls look
      // together every RECHECK_MS, and a write each was a thousand writes in Redis's queue ahead of the
      // look that a wake then makes (bench/sessions.ts).
      if (first && session.answered >= after) {
        await programs.touch(claims.program, claims.session, deps.now());
      }
      if (p.status === 'completed') return { body: { requests: [], end: { status: 'completed' } } };
      return { body: { requests: [] } };
    }
    const requests: NumberedRequest[] = [];
    for (const { seq, request } of issued) {
      requests.push({ seq, request: await wire(request, claims, base, device) });
    }
    const body = { requests };
    if (issued.some(({ request }) => request.kind === 'contribute')) return { body };
    const polled = { body, text: JSON.stringify(body) };
    look.shared.set(key, polled);
    return polled;
  }

  /** A stored request as the device gets it: URLs for the bytes, and a task of the aggregation's plan. */
  async function wire(
    request: StoredRequest,
    claims: SessionClaims,
    base: string,
    device: () => Promise<string>,
  ): Promise<NumberedRequest['request']> {
    if (request.kind === 'create_value') {
      const { value, ...rest } = request;
      return {
        ...rest,
        bundle_url: `${base}/v1/programs/${claims.program}/values/${encodeURIComponent(value)}`,
      };
    }
    if (request.kind !== 'contribute') return request;
    const now = deps.now();
    const secureSum = request.secure_sum ? { secure_sum: request.secure_sum } : {};
    // A device holding a task it has not uploaded gets the same task again (its first answer may be lost).
    const assigned = await store.tryAssign(request.plan, newTaskId(), now, await device());
    if (!assigned.ok) {
      // Too late (the aggregation closed, no longer selects or is paused), or already uploaded: no URL and
      // no token. A device that has not uploaded answers UPLOAD_LATE; one served this request again after
      // a lost answer, whose upload was accepted, answers contributed.
      return {
        kind: 'contribute',
        aggregation: request.aggregation,
        handle: request.handle,
        upload_url: '',
        token: '',
        deadline: now,
        ...secureSum,
      };
    }
    const loadedPlan = await deps.plans.get(request.plan);
    const deadline =
      assigned.reportingDeadline ??
      assigned.openedAt + (loadedPlan ? scheduleOf(loadedPlan.checked.plan).reportingDeadlineS : 300) * 1000;
    const token = await signTaskToken(config.tokenSecret, {
      plan: assigned.ref.plan,
      round: assigned.ref.round,
      attempt: assigned.ref.attempt,
      task: assigned.task,
      device: assigned.device,
      exp: Math.floor(deadline / 1000),
    });
    const secure = loadedPlan && secAggSetting(loadedPlan.checked.plan);
    return {
      kind: 'contribute',
      aggregation: request.aggregation,
      handle: request.handle,
      upload_url: `${base}/v1/tasks/${assigned.task}/result`,
      token,
      deadline,
      ...secureSum,
      ...(secure
        ? {
            secure_aggregation: {
              protocol: secure.protocol,
              url: `${base}/v1/tasks/${assigned.task}/secagg`,
            },
          }
        : {}),
    };
  }

  router.post(
    '/v1/sessions/:session/answers',
    jsonBody({ limit: ANSWERS_BODY_LIMIT, tooLarge: 'REQUEST_INVALID' }),
    validateBody('session-answers.schema.json'),
    async (req, res) => {
      const { claims, session } = await sessionOf(req, req.params.session as string);
      if (session.status !== 'live') {
        throw new AppError('SESSION_ENDED', `session ${session.id} has ended (${session.status})`);
      }
      const answers = (req.body as { answers: { seq: number; ok: boolean; code?: string }[] }).answers;
      const issued = await programs.requestCount(claims.program);
      let answered = session.answered;
      for (const a of answers) {
        if (a.seq <= answered) continue;
        if (a.seq !== answered + 1 || a.seq > issued) {
          throw new AppError(
            'ANSWER_OUT_OF_ORDER',
            `answer ${a.seq}: the session's next answer is ${answered + 1} of ${issued} requests issued`,
            [{ path: `/answers/${answers.indexOf(a)}/seq`, message: `expected ${answered + 1}` }],
          );
        }
        if (!a.ok) {
          // The code only: a device's message may quote its own data, which the server must not keep or log.
          const reason = `request ${a.seq}: ${a.code ?? 'REQUEST_INVALID'}`;
          await programs.answer(claims.program, session.id, a.seq - 1, deps.now());
          await programs.endSession(
            claims.program,
            session.id,
            'failed',
            a.code ?? 'REQUEST_INVALID',
            reason,
          );
          deps.log.info(
            { program: claims.program, session: session.id, reason },
            'session failed by its device',
          );
          res.json({ answered: a.seq - 1 });
          return;
        }
        answered = a.seq;
      }
      const now = await programs.answer(claims.program, session.id, answered, deps.now());
      if (now < 0) throw new AppError('SESSION_ENDED', `session ${session.id} has ended`);
      res.json({ answered: now });
    },
  );

  router.delete('/v1/sessions/:session', async (req, res) => {
    const { claims, session } = await sessionOf(req, req.params.session as string);
    await programs.endSession(claims.program, session.id, 'left', 'SESSION_ENDED', 'the device left');
    res.status(204).end();
  });

  return { router, longPoll };
}

/** Offers a device a place in a recruiting program of the population, if any; its session grant. */
export async function joinProgram(
  deps: Pick<RouteDeps, 'config' | 'now'> & { readonly programs: ProgramStore },
  ids: readonly string[],
  device: string,
  base: string,
): Promise<SessionGrant | undefined> {
  for (const id of ids) {
    // The session keeps the device's binding to the program, never its id (as a round keeps HMACs).
    const binding = sessionBinding(deps.config.tokenSecret, id, device);
    const joined = await deps.programs.join(id, binding, newTaskId(), deps.now());
    if (joined.outcome !== 'joined' && joined.outcome !== 'existing') continue;
    const p = await deps.programs.get(id);
    if (!p) continue;
    const doc = await deps.programs.document(id);
    const stepTimeout = (JSON.parse(doc!) as { cohort: { step_timeout_s: number } }).cohort.step_timeout_s;
    const token = await signSessionToken(
      deps.config.tokenSecret,
      { program: id, session: joined.session, device: binding },
      deps.now(),
    );
    return {
      program_id: id,
      session_id: joined.session,
      token,
      client_program_url: `${base}/v1/programs/${id}/client-program`,
      requests_url: `${base}/v1/sessions/${joined.session}/requests`,
      answers_url: `${base}/v1/sessions/${joined.session}/answers`,
      session_url: `${base}/v1/sessions/${joined.session}`,
      step_timeout_s: stepTimeout,
      answered:
        joined.outcome === 'existing'
          ? ((await deps.programs.session(id, joined.session))?.answered ?? 0)
          : 0,
    };
  }
  return undefined;
}
