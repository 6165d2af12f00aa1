import { RoundhouseClient, type ClientOptions } from '../../src/client/client';
import type { Clock } from '../../src/client/clock';
import { MemoryExampleStore } from '../../src/client/example-store';
import type { Assignment } from '../../src/client/types';
import type { ClientExamples } from '../../src/data';
import { PLAN_LIBRARY } from '../../src/plans';
import type { RoundInfo } from '../../src/store/types';
import type { Cluster } from './cluster';

/** A clock whose sleeps return at once and move its time forward; it records every sleep. */
export class FakeClock implements Clock {
  readonly sleeps: number[] = [];
  constructor(
    public t = Date.now(),
    private readonly onSleep?: (ms: number) => void,
  ) {}
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.sleeps.push(ms);
    this.t += ms;
    this.onSleep?.(ms);
  }
}

/** One request a {@link countingFetch} passed on. */
export interface Call {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly ifNoneMatch: string | null;
}

/** A fetch that records every request it passes to the real one. */
export function countingFetch(): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const wrapped = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await fetch(input, init);
    calls.push({
      method: init?.method ?? 'GET',
      url: String(input),
      status: res.status,
      ifNoneMatch: new Headers(init?.headers).get('if-none-match'),
    });
    return res;
  };
  return { fetch: wrapped as typeof fetch, calls };
}

/** The uploads among recorded calls. */
export const uploads = (calls: readonly Call[]): Call[] =>
  calls.filter((c) => c.method === 'POST' && c.url.endsWith('/result'));

/** int32 examples for the federated-sum plan. */
export const numbers = (...values: number[]): ClientExamples => ({
  count: values.length,
  leaves: [Int32Array.from(values)],
});

/**
 * Plans, clients and reads against one cluster. Every plan goes to a population of its own, so that the
 * tests of a file do not take each other's tasks.
 */
export class SdkHarness {
  private populations = 0;

  constructor(
    private readonly cluster: () => Cluster,
    private readonly tag: string,
  ) {}

  /** A population name no other test uses. */
  unique(what: string): string {
    return `${this.tag}-${what}-${++this.populations}-${process.pid}`;
  }

  /** Publishes a federated-sum plan (int32 values) to a fresh population; returns its id and population. */
  async sumPlan(
    what: string,
    options: Record<string, unknown> = {},
  ): Promise<{ id: string; population: string }> {
    const population = this.unique(what);
    const plan = PLAN_LIBRARY['federated-sum']!.build({ collection: population, rounds: 2, ...options });
    return { id: await this.submit(plan), population };
  }

  async submit(plan: unknown): Promise<string> {
    const res = await this.cluster().operator('/v1/plans', { method: 'POST', body: JSON.stringify(plan) });
    if (res.status !== 201) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { id: string }).id;
  }

  /** The latest attempt of a round. */
  async roundOf(id: string, round: number): Promise<RoundInfo> {
    const res = await this.cluster().operator(`/v1/plans/${id}/rounds`);
    const { rounds } = (await res.json()) as { rounds: RoundInfo[] };
    const found = rounds.filter((r) => r.round === round).pop();
    if (!found) throw new Error(`plan ${id} has no round ${round}`);
    return found;
  }

  /** A client of `population` holding `values`. */
  client(population: string, values: number[], extra: Partial<ClientOptions> = {}): RoundhouseClient {
    return new RoundhouseClient({
      server: this.cluster().url,
      population,
      store: new MemoryExampleStore({ [population]: numbers(...values) }),
      ...extra,
    });
  }
}

/** Checks in and expects an assignment. */
export async function assignmentOf(c: RoundhouseClient): Promise<Assignment> {
  const answer = await c.checkin();
  if (!('assignment' in answer)) throw new Error(`not assigned: ${JSON.stringify(answer)}`);
  return answer.assignment;
}
