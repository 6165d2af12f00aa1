/**
 * The operator's program endpoints (`POST /v1/programs`, `GET /v1/programs`, `GET /v1/programs/{id}`) over
 * fetch, for the CLI and the program simulator, failing with the SDK's typed errors as `OperatorApi` does
 * for plans (so that `explain` in src/cli/operator-client.ts words them alike). It sits beside the
 * simulator, its first user, until the SDK's operator client takes programs too.
 */
import { errorFromResponse, RoundhouseError } from '../client/errors';
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

/** Submits and reads programs with the operator token. */
export class ProgramApi {
  constructor(
    private readonly server: string,
    private readonly token: string,
    private readonly fetchFn: typeof fetch = globalThis.fetch.bind(globalThis),
  ) {}

  /** Submits a program (checked by the server: a refusal carries its code and pointers); its summary. */
  submit(program: unknown): Promise<ProgramSummary> {
    return this.json<ProgramSummary>('/v1/programs', { method: 'POST', body: JSON.stringify(program) });
  }

  /** Every program's summary. */
  async programs(): Promise<ProgramSummary[]> {
    return (await this.json<{ programs: ProgramSummary[] }>('/v1/programs')).programs;
  }

  /** One program with its sessions' counts. */
  program(id: string): Promise<ProgramDetail> {
    return this.json<ProgramDetail>(`/v1/programs/${encodeURIComponent(id)}`);
  }

  private async json<T>(path: string, init: RequestInit = {}): Promise<T> {
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
    return (await res.json()) as T;
  }
}
