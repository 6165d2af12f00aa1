import { decodeBundle, encodeBundle } from '../codec';
import { Interpreter } from '../compute/interpreter';
import type { TffType } from '../compute/types';
import { disposeValue, structValue } from '../compute/value';
import { toBatches, type ClientExamples } from '../data';
import type { Computation } from '../generated/computation';
import type { ClientDataSpec } from '../generated/plan';
import { errorFromResponse, RoundhouseError } from './errors';

/** The client plan a server serves for a plan: everything a client needs to run `work`. */
export interface ClientPlan {
  readonly format: 'roundhouse.client-plan/v1';
  readonly plan_id: string;
  readonly work: Computation;
  readonly functions: Readonly<Record<string, Computation>>;
  readonly client_data: ClientDataSpec;
  readonly broadcast_type: TffType;
  readonly upload_type: TffType;
}

/** A task the server assigned at check-in. */
export interface Assignment {
  readonly plan_id: string;
  readonly task_id: string;
  readonly round: number;
  readonly attempt: number;
  readonly client_plan_url: string;
  readonly broadcast_url: string;
  readonly upload_url: string;
  readonly token: string;
  readonly deadline: number;
}

/** What a check-in answers. */
export type CheckinAnswer =
  | { readonly assignment: Assignment }
  | { readonly retry: { readonly min_seconds: number; readonly max_seconds: number } };

/** Options of a client. */
export interface ClientOptions {
  /** Base URL of the server, e.g. `http://localhost:8080`. */
  readonly server: string;
  readonly population: string;
  /** Sent at check-in and bound into the task token; a random id is used when absent. */
  readonly clientId?: string;
  /** Gzip uploads (default true). */
  readonly gzip?: boolean;
  /** The fetch to use (tests, custom agents); default the global fetch. */
  readonly fetch?: typeof fetch;
}

/** What one task did. */
export interface TaskOutcome {
  readonly assignment: Assignment;
  readonly examples: number;
  readonly uploadBytes: number;
}

/**
 * The stateless client: checks in, downloads the client plan (cached by plan id) and the round's broadcast,
 * runs `work` on local examples with the same interpreter as the server, and uploads the update. It keeps
 * nothing about the server but caches of immutable resources.
 */
export class RoundhouseClient {
  private readonly fetch: typeof fetch;
  private readonly plans = new Map<string, ClientPlan>();
  readonly clientId: string;

  constructor(private readonly options: ClientOptions) {
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.clientId = options.clientId ?? randomId();
  }

  /** Asks for a task. */
  async checkin(): Promise<CheckinAnswer> {
    const url = `${this.options.server}/v1/populations/${encodeURIComponent(this.options.population)}/checkin`;
    return (await this.json(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: this.clientId }),
    })) as CheckinAnswer;
  }

  /** The client plan of an assignment, from the cache when this client has seen the plan. */
  async clientPlan(a: Assignment): Promise<ClientPlan> {
    const cached = this.plans.get(a.plan_id);
    if (cached) return cached;
    const plan = (await this.json(a.client_plan_url)) as ClientPlan;
    this.plans.set(a.plan_id, plan);
    return plan;
  }

  /** Runs an assignment on the examples and uploads the result. */
  async runTask(a: Assignment, examples: ClientExamples): Promise<TaskOutcome> {
    const plan = await this.clientPlan(a);
    const broadcastBytes = await this.bytes(a.broadcast_url);
    const interpreter = new Interpreter(plan.functions);
    const C = decodeBundle(broadcastBytes, plan.broadcast_type);
    const D = toBatches(examples, plan.client_data.element, plan.client_data.batch_size);
    let upload: Uint8Array;
    try {
      const out = interpreter.run(
        plan.work,
        structValue([
          [undefined, D],
          [undefined, C],
        ]),
        { round: a.round, label: 'work' },
      );
      try {
        upload = encodeBundle(out, plan.upload_type);
      } finally {
        disposeValue(out);
      }
    } finally {
      disposeValue(C);
      disposeValue(D);
    }
    const gzip = this.options.gzip ?? true;
    const body = gzip ? await gzipBytes(upload) : upload;
    const res = await this.request(a.upload_url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${a.token}`,
        'content-type': 'application/octet-stream',
        ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      },
      body: body as BodyInit,
    });
    await res.arrayBuffer();
    return { assignment: a, examples: examples.count, uploadBytes: body.byteLength };
  }

  private async request(url: string, init?: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetch(url, init);
    } catch (e) {
      throw new RoundhouseError(
        0,
        'NETWORK',
        `${init?.method ?? 'GET'} ${url}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  private async json(url: string, init?: RequestInit): Promise<unknown> {
    return (await this.request(url, init)).json();
  }

  private async bytes(url: string): Promise<Uint8Array> {
    return new Uint8Array(await (await this.request(url)).arrayBuffer());
  }
}

function randomId(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Gzips with the platform's CompressionStream (browsers and Node 18+). */
export async function gzipBytes(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
