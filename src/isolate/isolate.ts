import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { HostMessage, IsolateData, StartReply, TaskReply } from './protocol';

/** Why an isolate stopped serving: it crashed, ran out of heap, or was stopped for taking too long. */
export class IsolateDied extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IsolateDied';
  }
}

/**
 * How many documents (plans and programs, by `documentKey`) the host remembers having sent an isolate, most
 * recent first; the isolate keeps as many checked ones (LocalEvaluator's DOCUMENTS_KEPT). Either side
 * forgetting first costs one `need-plan` round trip or one document sent again, never a wrong answer.
 */
const SEEN_KEPT = 32;

/** How an isolate is started. */
export interface IsolateOptions {
  readonly entry: string;
  readonly data: IsolateData;
  /** `maxOldGenerationSizeMb` of the thread. */
  readonly maxHeapMb: number;
  /** How long starting (loading TensorFlow.js, initialising the backend) may take. */
  readonly startTimeoutMs: number;
}

/**
 * One worker-thread isolate (`isolate-entry.ts`) that runs one task at a time. Any death (exit, heap
 * exhaustion, termination on timeout) rejects the task in flight with {@link IsolateDied}; the isolate is
 * then useless and the pool starts another.
 */
export class Isolate {
  /** Documents (`documentKey`) this isolate was sent, least recent first, at most SEEN_KEPT. */
  private readonly seen = new Set<string>();
  private dead: string | undefined;
  private pending: { resolve: (r: TaskReply) => void; reject: (e: Error) => void } | undefined;

  private constructor(
    private readonly worker: Worker,
    /** The TensorFlow.js backend the isolate runs. */
    readonly backend: string,
  ) {
    worker.on('message', (reply: TaskReply) => {
      const p = this.pending;
      this.pending = undefined;
      p?.resolve(reply);
    });
    worker.on('error', (err: Error & { code?: string }) => {
      this.die(
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? 'the evaluation ran out of heap memory (ISOLATE_MAX_HEAP_MB)'
          : `the isolate crashed: ${err.message}`,
      );
    });
    worker.on('exit', (code) => this.die(`the isolate exited (code ${code})`));
  }

  /** Starts an isolate and waits until its backend works; rejects when it cannot start. */
  static start(options: IsolateOptions): Promise<Isolate> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(options.entry, {
        workerData: options.data,
        resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb },
      });
      const onError = (e: Error) => fail(e.message);
      const onExit = (code: number) => fail(`it exited with code ${code}`);
      const onMessage = (m: StartReply) => {
        settle();
        if (m.kind === 'started') resolve(new Isolate(worker, m.backend));
        else fail(m.message);
      };
      // Only these listeners go: removeAllListeners() would also drop the Worker's own, and with them
      // the delivery of messages.
      const settle = () => {
        clearTimeout(timer);
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.off('message', onMessage);
      };
      const fail = (why: string) => {
        settle();
        void worker.terminate();
        reject(new Error(`an isolate could not start: ${why}`));
      };
      const timer = setTimeout(
        () => fail(`not ready within ${options.startTimeoutMs} ms`),
        options.startTimeoutMs,
      );
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.on('message', onMessage);
    });
  }

  /** Whether this isolate was sent the document recently (it likely keeps it checked). */
  hasSeen(key: string): boolean {
    return this.seen.has(key);
  }

  /** Records that this isolate has the document now. */
  markSeen(key: string): void {
    this.seen.delete(key);
    this.seen.add(key);
    if (this.seen.size > SEEN_KEPT) this.seen.delete(this.seen.values().next().value!);
  }

  /** Whether the isolate died (then it serves nothing any more). */
  get alive(): boolean {
    return this.dead === undefined;
  }

  /**
   * Runs one task; rejects with {@link IsolateDied} when the isolate dies during it, or when it takes
   * longer than `timeoutMs` (the isolate is then terminated: a busy loop is stopped too).
   */
  call(req: HostMessage, timeoutMs: number, transfer: ArrayBuffer[] = []): Promise<TaskReply> {
    if (this.dead !== undefined) return Promise.reject(new IsolateDied(this.dead));
    if (this.pending) return Promise.reject(new Error('an isolate runs one task at a time'));
    return new Promise<TaskReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.die(`the evaluation took longer than ${timeoutMs} ms (ISOLATE_TIMEOUT_MS)`);
      }, timeoutMs);
      this.pending = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.worker.postMessage(req, transfer);
    });
  }

  /** Stops the thread; a task in flight is rejected. */
  terminate(why = 'the isolate was stopped'): Promise<void> {
    this.die(why);
    return this.worker.terminate().then(() => undefined);
  }

  private die(why: string): void {
    if (this.dead === undefined) {
      this.dead = why;
      void this.worker.terminate();
    }
    const p = this.pending;
    this.pending = undefined;
    p?.reject(new IsolateDied(this.dead));
  }
}

/**
 * The isolate's entry as plain JS: beside this file when running from dist/, else (ts-jest runs the
 * sources) dist/src/isolate/isolate-entry.js of the repository, which `npm test` builds before jest.
 */
export function isolateEntryPath(): string {
  if (__filename.endsWith('.js')) return path.join(__dirname, 'isolate-entry.js');
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`package.json not found above ${__dirname}`);
    dir = up;
  }
  const entry = path.join(dir, 'dist', 'src', 'isolate', 'isolate-entry.js');
  if (!fs.existsSync(entry)) {
    throw new Error(
      `the isolate entry ${entry} is missing: plan code runs in worker threads that need the built JS; run \`npm run build\` first`,
    );
  }
  return entry;
}
