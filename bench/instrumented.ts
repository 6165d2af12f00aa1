/**
 * Server processes a benchmark can ask questions of over an IPC channel, such as the process's memory after
 * a full collection: `/proc` gives a process's RSS from outside, but its heap in use (and garbage left
 * uncollected) can only be read from inside, with `--expose-gc` to collect first. Both sides are here: the
 * server calls {@link serveQuestions} once it listens, the benchmark starts it with {@link startInstrumented}.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** A process's memory after a full collection, bytes (`process.memoryUsage()`). */
export interface Memory {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

/** This process's memory after two full collections (the second frees what the first's finalizers left). */
export function gcMemory(): Memory {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('start the process with --expose-gc to read its memory after a collection');
  gc();
  gc();
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
  };
}

interface Question {
  readonly id: number;
  readonly ask: string;
}

interface Reply {
  readonly id?: number;
  readonly value?: unknown;
  readonly error?: string;
  readonly ready?: string;
}

/** The server's side: tells the parent it listens at `url`, then answers each question with its handler. */
export function serveQuestions(url: string, handlers: Record<string, () => unknown>): void {
  if (!process.send)
    throw new Error('serveQuestions: no IPC channel (start the process with startInstrumented)');
  process.on('message', (m: Question) => {
    const handler = handlers[m.ask];
    try {
      if (!handler) throw new Error(`no question ${m.ask}`);
      process.send!({ id: m.id, value: handler() } satisfies Reply);
    } catch (e) {
      process.send!({ id: m.id, error: (e as Error).message } satisfies Reply);
    }
  });
  // The channel must not keep the process alive once the server has closed, and a server whose benchmark
  // is gone (it failed before stopping it) stops too.
  process.channel?.unref();
  process.once('disconnect', () => process.exit(0));
  process.send({ ready: url } satisfies Reply);
}

/** A server process started by {@link startInstrumented}. */
export interface Instrumented {
  readonly url: string;
  readonly child: ChildProcess;
  /** Asks the process a question its `serveQuestions` handlers answer. */
  ask<T>(question: string): Promise<T>;
  /** SIGTERM, then SIGKILL after 15 s. */
  stop(): Promise<void>;
}

/** Starts `script` with `--expose-gc` and an IPC channel; resolves once it says where it listens. */
export async function startInstrumented(
  script: string,
  options: {
    readonly env?: NodeJS.ProcessEnv;
    readonly args?: readonly string[];
    readonly nodeArgs?: readonly string[];
  } = {},
): Promise<Instrumented> {
  const child = spawn(
    process.execPath,
    ['--expose-gc', ...(options.nodeArgs ?? []), script, ...(options.args ?? [])],
    { env: options.env ?? process.env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let next = 0;
  const url = await new Promise<string>((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`${script} exited with ${code} before it listened`));
    child.once('exit', onExit);
    child.on('message', (m: Reply) => {
      if (m.ready) {
        child.off('exit', onExit);
        resolve(m.ready);
        return;
      }
      const p = m.id === undefined ? undefined : pending.get(m.id);
      if (!p) return;
      pending.delete(m.id!);
      if (m.error) p.reject(new Error(`${script}: ${m.error}`));
      else p.resolve(m.value);
    });
  });
  child.once('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`${script} exited with ${code}`));
    pending.clear();
  });
  return {
    url,
    child,
    ask<T>(ask: string): Promise<T> {
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, ask } satisfies Question);
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
