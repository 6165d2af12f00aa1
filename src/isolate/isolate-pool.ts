import type { Limits } from '../compute/limits';
import type { IsolateConfig } from '../config';
import { AppError } from '../errors';
import type { Logger } from '../log/logger';
import type {
  FinalizeResult,
  FinalizeTask,
  FoldResult,
  FoldTask,
  PlanEvaluator,
  PlanRef,
  ProgramCallTask,
  ProgramEvaluator,
  ProgramRef,
  RoundMaterials,
} from './contract';
import { Isolate, IsolateDied, isolateEntryPath } from './isolate';
import { documentKey, documentKind, type TaskPayload, type TaskRequest } from './protocol';
import { newOnceFlags } from './once-flags';

/** How long an isolate gets to load TensorFlow.js and initialise its backend. */
const START_TIMEOUT_MS = 30_000;

/** What the pool is built from. */
export interface IsolatePoolOptions {
  readonly config: IsolateConfig;
  /** The interpreter limits the isolates check and run plans with. */
  readonly limits: Limits;
  readonly log: Logger;
  /** The isolate entry (default: `isolateEntryPath()`). */
  readonly entry?: string;
}

/**
 * {@link PlanEvaluator} and {@link ProgramEvaluator} on a pool of disposable worker-thread isolates
 * (docs/server.md, "Isolation of plan code"). Each isolate runs one task at a time with a wall-clock
 * timeout, a V8 heap limit and a capped WebAssembly memory; an isolate that crashes, runs out of memory or
 * time, or whose backend faults is replaced, and only the task in flight fails (`EVAL_FAULT`). Isolates
 * keep checked plans and programs by id, so a document crosses the boundary once per isolate.
 */
export class IsolatePool implements PlanEvaluator, ProgramEvaluator {
  private readonly idle: Isolate[] = [];
  private readonly waiting: Array<{ resolve: (i: Isolate) => void; reject: (e: Error) => void }> = [];
  /** Isolates started or starting, busy or idle. */
  private live = 0;
  private seq = 0;
  private closed = false;
  /** Whether the backend of the isolates was logged (once, when the first started). */
  private backendLogged = false;
  /** Test fault injection only: which `-once` faults fired, across the isolates the pool starts. */
  private readonly onceFaults: SharedArrayBuffer | undefined;

  constructor(private readonly options: IsolatePoolOptions) {
    this.onceFaults = options.config.testFaults ? newOnceFlags() : undefined;
  }

  /** Starts one isolate, to fail early when none can start; resolves with the backend they run. */
  async start(): Promise<string> {
    const iso = await this.acquire();
    this.release(iso);
    return iso.backend;
  }

  initialize(plan: PlanRef): Promise<Uint8Array> {
    return this.run<Uint8Array>(plan, { op: 'initialize' });
  }

  materials(plan: PlanRef, state: Uint8Array, round: number): Promise<RoundMaterials> {
    return this.run<RoundMaterials>(plan, { op: 'materials', state, round });
  }

  fold(plan: PlanRef, task: FoldTask): Promise<FoldResult> {
    // Upload bytes are fresh copies read from Redis and used once: move them into the isolate instead of
    // copying them again (a batch of 16 uploads of 100k floats is 6 MB).
    const uploads = task.uploads.map((u) => ({ task: u.task, bytes: u.bytes && standalone(u.bytes) }));
    const transfer = uploads.flatMap((u) => (u.bytes ? [u.bytes.buffer as ArrayBuffer] : []));
    return this.run<FoldResult>(plan, { op: 'fold', task: { ...task, uploads } }, transfer);
  }

  finalize(plan: PlanRef, task: FinalizeTask): Promise<FinalizeResult> {
    return this.run<FinalizeResult>(plan, { op: 'finalize', task });
  }

  callProgram(program: ProgramRef, task: ProgramCallTask): Promise<Uint8Array> {
    // The argument is copied, not moved: callers may well keep a server value's bytes for later steps.
    return this.run<Uint8Array>(program, { op: 'call', task });
  }

  async ready(): Promise<void> {
    // Any isolate started or starting, idle or busy, is ready (tasks queue); none means one must start.
    if (this.live > 0) return;
    await this.start();
  }

  /**
   * How many TensorFlow.js tensors each idle isolate holds: plan code runs there, so that is where a leak
   * would show (tests call it once nothing runs).
   */
  async tensorCounts(): Promise<number[]> {
    // Taken out of `idle` meanwhile, so that no task is given one in the middle of the question.
    const isolates = this.idle.splice(0);
    try {
      return await Promise.all(
        isolates
          .filter((iso) => iso.alive)
          .map(async (iso) => {
            const reply = await iso.call({ id: ++this.seq, op: 'tensors' }, this.options.config.timeoutMs);
            return reply.kind === 'ok' ? Number(reply.value) : NaN;
          }),
      );
    } finally {
      // Dead ones too: acquire() discards them and counts them out of `live`.
      for (const iso of isolates) {
        if (iso.alive) this.release(iso);
        else this.idle.push(iso);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(notReady('the isolate pool is closed'));
    await Promise.all(this.idle.splice(0).map((i) => i.terminate('the isolate pool is closed')));
  }

  /** Runs a task of the plan or, for `call`, of the program `doc`, on an isolate. */
  private async run<T>(
    doc: PlanRef | ProgramRef,
    payload: TaskPayload,
    transfer: ArrayBuffer[] = [],
  ): Promise<T> {
    const iso = await this.acquire();
    const { timeoutMs } = this.options.config;
    const request = (json?: string) =>
      ({
        id: ++this.seq,
        doc: json === undefined ? { id: doc.id } : { id: doc.id, json },
        ...payload,
      }) as TaskRequest;
    const json = () => JSON.stringify(doc.document);
    // A plan and a program may share an id: the isolate keeps them apart, and so does the record here.
    const key = documentKey(documentKind(payload.op), doc.id);
    let keep = false;
    try {
      // The document goes along the first time this isolate sees it; it keeps the checked plan or program
      // (and asks again, `need-plan`, should it have let it go).
      let reply = await iso.call(iso.hasSeen(key) ? request() : request(json()), timeoutMs, transfer);
      // The isolate parked the task (its bytes are there already): send only the document.
      if (reply.kind === 'need-plan')
        reply = await iso.call({ id: ++this.seq, op: 'resume', json: json() }, timeoutMs);
      iso.markSeen(key);
      switch (reply.kind) {
        case 'ok':
          keep = true;
          return reply.value as T;
        case 'error':
          keep = true;
          throw new AppError(reply.code, reply.message, reply.details);
        case 'fault':
          throw this.fault(doc, payload, `the backend faulted (${reply.message})`);
      }
      throw new Error('the isolate asked for the document twice');
    } catch (e) {
      if (e instanceof IsolateDied) throw this.fault(doc, payload, e.message);
      throw e;
    } finally {
      if (keep && iso.alive) this.release(iso);
      else this.retire(iso);
    }
  }

  private fault(doc: PlanRef | ProgramRef, payload: TaskPayload, why: string): AppError {
    const { op } = payload;
    if (op === 'call') {
      const { fn } = payload.task;
      this.options.log.warn({ program: doc.id, task: op, fn, why }, 'program call faulted; isolate replaced');
      return new AppError('EVAL_FAULT', `call ${fn}: ${why}`);
    }
    this.options.log.warn({ plan: doc.id, task: op, why }, 'plan evaluation faulted; isolate replaced');
    return new AppError('EVAL_FAULT', `${op}: ${why}`);
  }

  private acquire(): Promise<Isolate> {
    if (this.closed) return Promise.reject(notReady('the isolate pool is closed'));
    for (let iso = this.idle.pop(); iso; iso = this.idle.pop()) {
      if (iso.alive) return Promise.resolve(iso);
      this.live -= 1;
    }
    const waiter = new Promise<Isolate>((resolve, reject) => this.waiting.push({ resolve, reject }));
    if (this.live < this.options.config.poolSize) this.spawn();
    return waiter;
  }

  /** Starts an isolate for the first waiter; a failed start fails that waiter with NOT_READY. */
  private spawn(): void {
    this.live += 1;
    let entry: string;
    try {
      entry = this.options.entry ?? isolateEntryPath();
    } catch (e) {
      this.live -= 1;
      this.waiting.shift()?.reject(notReady((e as Error).message));
      return;
    }
    const { config, limits } = this.options;
    Isolate.start({
      entry,
      data: {
        limits,
        maxWasmBytes: config.maxWasmMb * 1024 * 1024,
        testFaults: config.testFaults,
        ...(this.onceFaults ? { onceFaults: this.onceFaults } : {}),
      },
      maxHeapMb: config.maxHeapMb,
      startTimeoutMs: START_TIMEOUT_MS,
    }).then(
      (iso) => {
        if (!this.backendLogged) {
          this.backendLogged = true;
          this.options.log.info({ backend: iso.backend }, 'plan isolates run TensorFlow.js');
        }
        this.release(iso);
      },
      (err: Error) => {
        this.live -= 1;
        this.options.log.error({ err }, 'an isolate could not start');
        this.waiting.shift()?.reject(notReady(err.message));
        // With nothing left starting, nobody would ever serve the others.
        if (this.live === 0) for (const w of this.waiting.splice(0)) w.reject(notReady(err.message));
      },
    );
  }

  private release(iso: Isolate): void {
    if (this.closed) {
      this.live -= 1;
      void iso.terminate('the isolate pool is closed');
      return;
    }
    const next = this.waiting.shift();
    if (next) next.resolve(iso);
    else this.idle.push(iso);
  }

  private retire(iso: Isolate): void {
    this.live -= 1;
    void iso.terminate();
    // Someone may wait for an isolate that will now never be released: start a replacement for them.
    if (this.waiting.length > 0 && !this.closed) this.spawn();
  }
}

function notReady(why: string): AppError {
  return new AppError('NOT_READY', `no plan isolate is available: ${why}`);
}

/** The bytes in an ArrayBuffer of their own (a copy only when they are a view into a larger one). */
function standalone(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}
