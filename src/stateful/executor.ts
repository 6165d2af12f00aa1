/**
 * What a device of a stateful program runs (docs/stateful.md, "The session protocol"): it holds values under
 * the handles the driver names and answers executor requests with the same interpreter the server runs.
 * The SDK runs this class in Node and in browsers, so it uses no Node-only API.
 */
import * as tf from '@tensorflow/tfjs';
import type { ExampleStore } from '../client/example-store';
import { decodeBundle, encodeBundle, readTypedBundle } from '../codec';
import { Interpreter, mapTensors } from '../compute/interpreter';
import { DEFAULT_LIMITS, type Limits } from '../compute/limits';
import { formatType, sequenceType, structType, tensorType, type TffType } from '../compute/types';
import { SecureSum } from '../aggregation/secure-sum';
import { disposeValue, isSequence, isStruct, structValue, type Value } from '../compute/value';
import { toBatches } from '../data';
import { AppError } from '../errors';
import type { ClientProgram } from './client-program';
import type {
  ContributeRequest,
  CreateCallRequest,
  CreateDataRequest,
  CreateSelectionRequest,
  CreateStructRequest,
  CreateValueRequest,
  DisposeRequest,
  ExecutorAnswer,
  ExecutorRequest,
} from './requests';
import { contributionType, contributionValue } from './requests';

/** A held value and the type the device reports for it. */
interface Held {
  readonly value: Value;
  readonly type: TffType;
}

/** Options of an executor. */
export interface ExecutorOptions {
  /** The interpreter's limits (default DEFAULT_LIMITS, as the server's). */
  readonly limits?: Limits;
}

/**
 * One device's side of a session. Every held value owns its tensors (a struct or selection holds clones,
 * which share the data), so disposing one handle never frees another's. Requests are answered one at a time
 * in order; a failure is an answer, never a throw, because the protocol answers each request with `ok` or an
 * error code.
 */
export class ClientExecutor {
  private readonly interpreter: Interpreter;
  /** Held values by handle: a Map, so that a handle like "toString" never reaches Object.prototype. */
  private readonly held = new Map<string, Held>();
  private readonly computations: ReadonlyMap<string, ClientProgram['computations'][string]>;
  private readonly collections: ReadonlyMap<string, ClientProgram['client_data'][string]>;

  constructor(
    program: Pick<ClientProgram, 'client_data' | 'computations' | 'functions'>,
    private readonly store: ExampleStore,
    options: ExecutorOptions = {},
  ) {
    this.interpreter = new Interpreter(program.functions ?? {}, options.limits ?? DEFAULT_LIMITS);
    this.computations = new Map(Object.entries(program.computations));
    this.collections = new Map(Object.entries(program.client_data));
  }

  /** Answers one request. */
  async execute(request: ExecutorRequest): Promise<ExecutorAnswer> {
    try {
      switch (request.kind) {
        case 'create_value':
          return this.created(request.handle, this.createValue(request));
        case 'create_data':
          return this.created(request.handle, await this.createData(request));
        case 'create_call':
          return this.created(request.handle, this.createCall(request));
        case 'create_struct':
          return this.created(request.handle, this.createStruct(request));
        case 'create_selection':
          return this.created(request.handle, this.createSelection(request));
        case 'contribute':
          return this.contribute(request);
        case 'dispose':
          return this.dispose(request);
      }
    } catch (e) {
      if (e instanceof AppError) return { ok: false, code: e.code, message: e.message };
      return { ok: false, code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
    }
  }

  /** The handles held, in creation order (for tests and diagnostics). */
  handles(): string[] {
    return [...this.held.keys()];
  }

  /**
   * Drops every held value, as a device that restarts or reloads its page loses them: its next request
   * naming one is answered HANDLE_UNKNOWN. Also how a session's end releases the device's tensors.
   */
  reset(): void {
    for (const { value } of this.held.values()) disposeValue(value);
    this.held.clear();
  }

  private createValue(r: CreateValueRequest): Held {
    this.checkFree(r.handle);
    return { value: decodeBundle(r.bundle, r.type), type: r.type };
  }

  private async createData(r: CreateDataRequest): Promise<Held> {
    this.checkFree(r.handle);
    const spec = this.collections.get(r.collection);
    if (!spec) throw new AppError('REQUEST_INVALID', `no client_data collection "${r.collection}"`);
    const examples = await this.store.examples(spec.collection, spec.element, spec.batch_size);
    // Checked again: the store was awaited, and a request may not create a handle twice.
    this.checkFree(r.handle);
    return {
      value: toBatches(examples, spec.element, spec.batch_size),
      type: sequenceType(spec.element),
    };
  }

  private createCall(r: CreateCallRequest): Held {
    this.checkFree(r.handle);
    const comp = this.computations.get(r.fn);
    if (!comp) throw new AppError('REQUEST_INVALID', `the client program has no computation "${r.fn}"`);
    const arg = callArgument(r.args.map((h) => this.get(h).value));
    // Client computations use no random op, so the round that seeds one does not matter here.
    const value = this.interpreter.run(comp, arg, { round: 0, label: r.fn });
    return { value, type: typeOfValue(value) };
  }

  private createStruct(r: CreateStructRequest): Held {
    this.checkFree(r.handle);
    const parts = r.fields.map((f) => ({ name: f.name, held: this.get(f.handle) }));
    return {
      value: structValue(parts.map((p) => [p.name, cloneValue(p.held.value)] as const)),
      type: structType(parts.map((p) => [p.name, p.held.type] as const)),
    };
  }

  private createSelection(r: CreateSelectionRequest): Held {
    this.checkFree(r.handle);
    const { value, type } = this.get(r.source);
    if (!isStruct(value) || type.kind !== 'struct') {
      throw new AppError('REQUEST_INVALID', `handle "${r.source}" does not hold a struct`);
    }
    const i = typeof r.field === 'number' ? r.field : value.fields.findIndex((f) => f.name === r.field);
    const f = value.fields[i];
    if (!f) throw new AppError('REQUEST_INVALID', `handle "${r.source}" has no field ${String(r.field)}`);
    return { value: cloneValue(f.value), type: type.fields[i]!.type };
  }

  /**
   * The bundle of a held value, as a round's upload (`contributionType`). A non-finite float is refused
   * (BUNDLE_NOT_FINITE) here, as the server's upload route refuses one, so that a diverged device fails its
   * own session rather than an aggregate. A secure sum's value must be int32 tensors in its kind's range
   * (SECURE_SUM_OUT_OF_RANGE otherwise, as TFF fails such a client): under SecAgg the server could not tell.
   */
  private contribute(r: ContributeRequest): ExecutorAnswer {
    const { value, type } = this.get(r.handle);
    const upload = contributionType(type, r.secure_sum);
    const bundle = encodeBundle(contributionValue(value, r.secure_sum), upload);
    const { tensors } = readTypedBundle(bundle, upload, { requireFinite: true });
    if (r.secure_sum) {
      if (tensors.length === 0 || tensors.some((t) => t.dtype !== 'int32')) {
        throw new AppError(
          'REQUEST_INVALID',
          `a secure sum adds int32 tensors; "${r.handle}" holds ${formatType(type)}`,
        );
      }
      const { kind, parameter } = r.secure_sum;
      const sum = new SecureSum(
        kind,
        tensors.map(() => parameter),
        tensors.map((t) => t.data.length),
      );
      sum.check(tensors.map((t) => t.data as Int32Array));
    }
    return { ok: true, kind: 'contributed', aggregation: r.aggregation, bundle, type: upload };
  }

  /** Drops the handles; all or none, so that a lost one is reported before anything changes. */
  private dispose(r: DisposeRequest): ExecutorAnswer {
    const values = r.handles.map((h) => this.get(h).value);
    for (const h of r.handles) this.held.delete(h);
    for (const v of new Set(values)) disposeValue(v);
    return { ok: true, kind: 'disposed' };
  }

  private created(handle: string, held: Held): ExecutorAnswer {
    this.held.set(handle, held);
    return { ok: true, kind: 'created', handle, type: held.type };
  }

  private get(handle: string): Held {
    const held = this.held.get(handle);
    if (!held) throw new AppError('HANDLE_UNKNOWN', `the device holds no handle "${handle}"`);
    return held;
  }

  private checkFree(handle: string): void {
    if (this.held.has(handle)) {
      throw new AppError('REQUEST_INVALID', `handle "${handle}" already exists: a handle is created once`);
    }
  }
}

/**
 * A program computation's argument from a step's values (docs/stateful.md, "Values and placements"): none
 * without values, the value itself for one, an unnamed struct of them in order for several.
 */
export function callArgument(values: readonly Value[]): Value | undefined {
  if (values.length <= 1) return values[0];
  return structValue(values.map((v) => [undefined, v] as const));
}

/** A value whose tensors are new handles to the same data (tf.clone copies nothing). */
function cloneValue(v: Value): Value {
  return mapTensors(v, (t) => tf.clone(t));
}

/**
 * The type of a computed value, with the shapes it has: the type a `create_call` answer reports. A
 * sequence's element type is its first element's (the empty struct for an empty sequence).
 */
export function typeOfValue(v: Value): TffType {
  if (isStruct(v)) return structType(v.fields.map((f) => [f.name, typeOfValue(f.value)] as const));
  if (isSequence(v)) return sequenceType(v.elements[0] ? typeOfValue(v.elements[0]) : structType([]));
  return tensorType(v.dtype as 'float32' | 'int32' | 'bool', v.shape);
}
