/**
 * Test support: the server's side of a round's SecAgg+ exchange for a whole cohort, in process and behind a
 * `fetch`, so that the SDK's SecAggExchange (src/client/secagg-task.ts) runs its real steps (R0 keys, R1
 * shares, R2 masking of an upload bundle) against it without a server. The steps follow
 * src/api/routes/secagg.ts; the phases move only when the test says so.
 */
import type { Clock } from '../../src/client/clock';
import type { ExchangeContext } from '../../src/client/secagg-task';
import { Transport } from '../../src/client/transport';
import type { Assignment } from '../../src/client/types';
import { hararyGraph } from '../../src/secagg/graph';
import type { PerKind } from '../../src/secagg/masks';
import { toBase64Url, type R0Advertise, type R1Shares } from '../../src/secagg/protocol';
import { checkAdvertise, checkShares } from '../../src/secagg/protocol-server';

/** The cohort's exchange: one task per index 0..n-1. */
export class FakeExchange {
  phase: 'selecting' | 'sharing' | 'reporting' = 'selecting';
  private readonly graph;
  private readonly keys: R0Advertise['keys'][] = [];
  private readonly inboxes: { from: number; ct: string }[][];

  constructor(
    private readonly o: {
      readonly n: number;
      readonly degree: number;
      readonly threshold: number;
      readonly params: PerKind<number>;
      readonly session: Uint8Array;
      readonly graphSeed: Uint8Array;
    },
  ) {
    this.graph = hararyGraph(o.n, o.degree, o.graphSeed);
    this.inboxes = Array.from({ length: o.n }, () => []);
  }

  /** What SecAggExchange needs to run task `i` against this exchange. */
  task(
    i: number,
    clock: Clock,
  ): { ctx: ExchangeContext; assignment: Assignment & { secure_aggregation: { url: string } } } {
    const transport = new Transport(this.fetch, clock, () => 0.5);
    return {
      ctx: { transport, clock, random: () => 0.5, credential: async () => `device-${i}` },
      assignment: {
        plan_id: 'p',
        task_id: `t${i}`,
        round: 1,
        attempt: 1,
        client_plan_url: 'http://exchange.test/client-plan',
        broadcast_url: 'http://exchange.test/broadcast',
        upload_url: `http://exchange.test/t/${i}/result`,
        token: `token-${i}`,
        deadline: clock.now() + 3_600_000,
        secure_aggregation: { protocol: 'secagg+', url: `http://exchange.test/t/${i}/secagg` },
      },
    };
  }

  private readonly fetch = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const m = /\/t\/(\d+)\/secagg(\/\w+)?$/.exec(String(input));
    if (!m) throw new Error(`the fake exchange has no ${String(input)}`);
    const i = Number(m[1]);
    const body = typeof init.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined;
    const answer = m[2] === undefined ? this.step(i) : this.post(i, m[2], body);
    return new Response(JSON.stringify(answer), { headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;

  private step(i: number): unknown {
    const hood = this.graph.neighbourhood(i);
    switch (this.phase) {
      case 'selecting':
        return { step: 'advertise' };
      case 'sharing':
        return {
          step: 'share',
          session: toBase64Url(this.o.session),
          index: i,
          n: this.o.n,
          degree: this.o.degree,
          threshold: this.o.threshold,
          neighbours: hood.map((j) => ({ index: j, ...this.keys[j]! })),
        };
      case 'reporting':
        return { step: 'upload', shares: this.inboxes[i], secure_params: this.o.params, n_max: this.o.n };
    }
  }

  private post(i: number, path: string, body: unknown): unknown {
    if (path === '/keys' && this.phase === 'selecting') {
      checkAdvertise(body as R0Advertise);
      this.keys[i] = (body as R0Advertise).keys;
      return { index: i };
    }
    if (path === '/shares' && this.phase === 'sharing') {
      checkShares(i, body as R1Shares, (j) => this.graph.neighbourhood(j));
      for (const { to, ct } of (body as R1Shares).shares) this.inboxes[to]!.push({ from: i, ct });
      return {};
    }
    throw new Error(`POST ${path} by ${i} in phase ${this.phase}`);
  }
}
