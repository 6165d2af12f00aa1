/** The operator endpoints over fetch, for tools (the CLI, the simulator), failing with the SDK's typed errors. */
import { errorFromResponse, RoundhouseError } from './errors';
import type { PlanSummary, RoundInfo } from '../store/types';
import type { ProgramSummary } from '../stateful/server/program-store';

export type { ProgramSummary };

/** What `GET /v1/programs/{id}` answers: the summary, the cohort's sessions by status, the aggregations' plans. */
export interface ProgramDetail extends ProgramSummary {
  readonly sessions: { readonly live: number; readonly failed: number; readonly left: number };
  readonly aggregations: readonly string[];
}

/** A program status after which nothing changes. */
export function programEnded(status: ProgramSummary['status']): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** What `GET /v1/plans/{id}/rounds` answers per attempt. */
export type RoundRow = Pick<
  RoundInfo,
  | 'round'
  | 'attempt'
  | 'phase'
  | 'target'
  | 'selection_target'
  | 'assigned'
  | 'reported'
  | 'rejected'
  | 'late'
  | 'aggregated_clients'
  | 'output'
  | 'error'
  | 'opened_at'
  | 'finished_at'
  | 'secure_aggregation'
  | 'dp'
>;

/** What `DELETE /v1/plans/{id}` answers: the plan and how many Redis keys the call deleted. */
export interface DeletedPlan {
  readonly id: string;
  readonly keys: number;
}

/** The operator's plan transitions, each `POST /v1/plans/{id}/{action}`. */
export type PlanAction = 'pause' | 'resume' | 'cancel';

/**
 * A plan's operator view: its summary, its round attempts, its server state; pausing, resuming, cancelling and
 * deleting it. Stateful programs too: submitting, reading and cancelling them (docs/stateful.md).
 */
export class OperatorApi {
  constructor(
    private readonly server: string,
    private readonly token: string,
    private readonly fetchFn: typeof fetch = globalThis.fetch.bind(globalThis),
  ) {}

  /** Submits a plan; answers its summary. */
  submit(plan: unknown): Promise<PlanSummary> {
    return this.json<PlanSummary>('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
  }

  /** Every plan's summary. */
  async plans(): Promise<PlanSummary[]> {
    return (await this.json<{ plans: PlanSummary[] }>('/v1/plans')).plans;
  }

  /** One plan's summary. */
  plan(id: string): Promise<PlanSummary> {
    return this.json<PlanSummary>(`/v1/plans/${encodeURIComponent(id)}`);
  }

  /** Every round attempt of a plan, oldest first. */
  async rounds(id: string): Promise<RoundRow[]> {
    return (await this.json<{ rounds: RoundRow[] }>(`/v1/plans/${encodeURIComponent(id)}/rounds`)).rounds;
  }

  /** The current server state bundle. */
  async state(id: string): Promise<Uint8Array> {
    const res = await this.send(`/v1/plans/${encodeURIComponent(id)}/state`);
    return new Uint8Array(await res.arrayBuffer());
  }

  /** Deletes a cancelled, completed or failed plan (409 PLAN_ACTIVE for an active or paused one). */
  delete(id: string): Promise<DeletedPlan> {
    return this.json<DeletedPlan>(`/v1/plans/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** Pauses an active plan: no new rounds open until it is resumed (409 PLAN_STATE_CONFLICT otherwise). */
  pause(id: string): Promise<PlanSummary> {
    return this.transition(id, 'pause');
  }

  /** Resumes a paused plan (409 PLAN_STATE_CONFLICT otherwise). */
  resume(id: string): Promise<PlanSummary> {
    return this.transition(id, 'resume');
  }

  /** Cancels an active or paused plan for good (409 PLAN_STATE_CONFLICT for a finished one). */
  cancel(id: string): Promise<PlanSummary> {
    return this.transition(id, 'cancel');
  }

  /** Submits a stateful program (checked by the server: a refusal carries its code and pointers). */
  submitProgram(program: unknown): Promise<ProgramSummary> {
    return this.json<ProgramSummary>('/v1/programs', { method: 'POST', body: JSON.stringify(program) });
  }

  /** Every program's summary. */
  async programs(): Promise<ProgramSummary[]> {
    return (await this.json<{ programs: ProgramSummary[] }>('/v1/programs')).programs;
  }

  /** One program with its sessions' counts and its aggregations' plans. */
  program(id: string): Promise<ProgramDetail> {
    return this.json<ProgramDetail>(`/v1/programs/${encodeURIComponent(id)}`);
  }

  /** Cancels a recruiting or running program (409 PLAN_STATE_CONFLICT for an ended one). */
  cancelProgram(id: string): Promise<ProgramSummary> {
    return this.json<ProgramSummary>(`/v1/programs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
  }

  /** Deletes an ended program and its aggregations' plans (409 PLAN_ACTIVE for a recruiting or running one). */
  deleteProgram(id: string): Promise<DeletedPlan> {
    return this.json<DeletedPlan>(`/v1/programs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  private transition(id: string, action: PlanAction): Promise<PlanSummary> {
    return this.json<PlanSummary>(`/v1/plans/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
  }

  private async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    return (await (await this.send(path, init)).json()) as T;
  }

  private async send(path: string, init: RequestInit = {}): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetchFn(`${this.server}${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
      });
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      const why = cause instanceof Error ? cause.message : e instanceof Error ? e.message : String(e);
      throw new RoundhouseError(0, 'NETWORK', `cannot reach the Roundhouse server at ${this.server}: ${why}`);
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }
}
