/**
 * The one load generator of the HTTP benchmarks: N virtual clients, each with its own keep-alive
 * connection (an undici `Client`), each running an async script of requests in a loop. Both the baseline
 * and Roundhouse are driven by it in the same run, so that a ratio compares servers, not clients: the
 * client's per-request cost (it shares the machine's cores with the servers) is the same on both sides.
 * A script may depend on earlier answers (check-in, then upload with the token it got), which a fixed
 * request list (autocannon) cannot express with retries.
 */
import { Client } from 'undici';

/** One answer, its body read in full. */
export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** What a virtual client's script calls: a POST over its own connection, timed under `label`. */
export interface VirtualClient {
  /** This client's number, 0..clients-1. */
  readonly index: number;
  post(label: string, path: string, body: string | Buffer, headers: Record<string, string>): Promise<Answer>;
}

/** Latencies of the requests of one label, in ms. */
export interface Latency {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
}

/** The outcome of a run. */
export interface LoadResult {
  /** Scripts run to completion. */
  readonly iterations: number;
  /** From the first request to the last script's end, ms. */
  readonly elapsedMs: number;
  /** Iterations per second. */
  readonly rate: number;
  /** Latency of each request label. */
  readonly latency: Record<string, Latency>;
}

/** Options of {@link drive}. */
export interface LoadOptions {
  /** The server, `http://host:port`. */
  readonly origin: string;
  /** Virtual clients, each with one connection. */
  readonly clients: number;
  /** Stop starting scripts after this many seconds... */
  readonly seconds?: number;
  /** ...or after this many scripts in all (whichever comes first). */
  readonly iterations?: number;
  /** One iteration of a client's script; `n` numbers iterations over all clients. */
  readonly script: (client: VirtualClient, n: number) => Promise<void>;
}

/** Runs the scripts of `clients` virtual clients until the time or the count runs out. */
export async function drive(options: LoadOptions): Promise<LoadResult> {
  const connections = Array.from(
    { length: options.clients },
    () => new Client(options.origin, { pipelining: 1, keepAliveTimeout: 30_000 }),
  );
  try {
    return await phase(options, connections, options.seconds, options.iterations);
  } finally {
    await Promise.all(connections.map((c) => c.close().catch(() => undefined)));
  }
}

async function phase(
  options: LoadOptions,
  connections: Client[],
  seconds: number | undefined,
  iterations: number | undefined,
): Promise<LoadResult> {
  if (seconds === undefined && iterations === undefined) throw new Error('give seconds or iterations');
  const samples = new Map<string, number[]>();
  let started = 0;
  let done = 0;
  const t0 = performance.now();
  const end = seconds === undefined ? Infinity : t0 + seconds * 1000;
  await Promise.all(
    connections.map(async (connection, index) => {
      const client: VirtualClient = {
        index,
        async post(label, path, body, headers) {
          const t = performance.now();
          const res = await connection.request({ method: 'POST', path, body, headers });
          const chunks: Buffer[] = [];
          for await (const chunk of res.body) chunks.push(chunk as Buffer);
          let list = samples.get(label);
          if (!list) samples.set(label, (list = []));
          list.push(performance.now() - t);
          return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
        },
      };
      while (performance.now() < end && (iterations === undefined || started < iterations)) {
        await options.script(client, started++);
        done += 1;
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  const latency: Record<string, Latency> = {};
  for (const [label, list] of samples) latency[label] = summarize(list);
  return { iterations: done, elapsedMs, rate: done / (elapsedMs / 1000), latency };
}

function summarize(list: number[]): Latency {
  const sorted = [...list].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const mean = sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length);
  return { count: sorted.length, mean, p50: at(0.5), p99: at(0.99) };
}

/** Mean and sample standard deviation of a list of figures. */
export function spread(values: readonly number[]): { mean: number; sd: number } {
  const mean = values.reduce((s, x) => s + x, 0) / values.length;
  const sd =
    values.length > 1 ? Math.sqrt(values.reduce((s, x) => s + (x - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, sd };
}

/** A request to POST whose answer must be `status`; the answer, else an error naming the request. */
export function expectStatus(what: string, answer: Answer, ...status: number[]): Answer {
  if (!status.includes(answer.status)) {
    throw new Error(`${what} answered ${answer.status}: ${answer.body.toString('utf8').slice(0, 200)}`);
  }
  return answer;
}
