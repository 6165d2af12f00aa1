/**
 * The in-process reference runner of stateful programs (docs/stateful.md, "The reference runner"): the
 * driver's semantics in one process, with each device a `ClientExecutor` given the requests the server will
 * send. It is what the server's results are tested against.
 */
import { MemoryExampleStore } from '../client/example-store';
import { SecureSum } from '../aggregation/secure-sum';
import { decodeBundle, encodeBundle, readTypedBundle, writeBundle } from '../codec';
import { Checker } from '../compute/checker';
import { Interpreter } from '../compute/interpreter';
import { DEFAULT_LIMITS, type Limits } from '../compute/limits';
import type { Signature, StructType, TffType } from '../compute/types';
import { disposeValue, isStruct, type StructValue, type Value } from '../compute/value';
import { valueToJson } from '../compute/value-json';
import type { ClientExamples } from '../data';
import { AppError } from '../errors';
import { mergeWith, pair } from '../rounds/form-steps';
import { clientProgramOf } from './client-program';
import { callArgument, ClientExecutor } from './executor';
import {
  SECURE_SUM_KINDS,
  secureSumSpec,
  type AggregateStep,
  type Program,
  type SecureSumStep,
  type Step,
} from './program';
import {
  contributionType,
  type ContributeRequest,
  type ExecutorAnswer,
  type ExecutorRequest,
} from './requests';
import type { FailedSession, ProgramRunOptions, ProgramRunResult, StepLog } from './run-types';
import { runServerComputation } from './server-call';

export type { FailedSession, ProgramRunOptions, ProgramRunResult, StepLog } from './run-types';

/** A server value and its static type (which a broadcast encodes it with). */
interface ServerValue {
  readonly value: Value;
  readonly type: TffType;
}

/** Thrown inside a run to stop the program with a reason; never leaves `runProgram`. */
class ProgramFailure extends Error {}

/**
 * Runs `program` (assumed checked) for the devices given, each with its examples by collection (a
 * client_data spec's `collection`). Server steps run with the interpreter (server-only ops allowed); client
 * steps become executor requests to every live device, each client value under the handle `h<step>`;
 * `aggregate` folds the contributions over partials from `zero()` with `accumulate`, merges them and
 * `report`s, and releases a result only over at least `min_clients` devices. A device that answers a request
 * with an error (HANDLE_UNKNOWN once its state is lost) fails its session; the program continues while every
 * aggregation still to come can reach its minimum with the devices left, and otherwise fails.
 */
export async function runProgram(
  program: Program,
  devices: ReadonlyMap<string, Readonly<Record<string, ClientExamples>>>,
  options: ProgramRunOptions = {},
): Promise<ProgramRunResult> {
  const run = new ReferenceRun(program, devices, options);
  try {
    return await run.run();
  } finally {
    run.release();
  }
}

class ReferenceRun {
  private readonly limits: Limits;
  private readonly interpreter: Interpreter;
  private readonly checker: Checker;
  private readonly signatures = new Map<string, Signature>();
  private readonly server = new Map<string, ServerValue>();
  /** Client values' handles by value name. */
  private readonly handles = new Map<string, string>();
  /** Live sessions, in recruiting order. */
  private readonly live = new Map<string, ClientExecutor>();
  private readonly cohort: string[];
  private readonly steps: StepLog[] = [];
  private readonly failedSessions: FailedSession[] = [];

  constructor(
    private readonly program: Program,
    devices: ReadonlyMap<string, Readonly<Record<string, ClientExamples>>>,
    private readonly options: ProgramRunOptions,
  ) {
    this.limits = options.limits ?? DEFAULT_LIMITS;
    const functions = program.functions ?? {};
    this.interpreter = new Interpreter(functions, this.limits);
    this.checker = new Checker(functions, this.limits);
    const client = clientProgramOf(program);
    this.cohort = [...devices.keys()].slice(0, program.cohort.target_clients);
    for (const id of this.cohort) {
      const store = new MemoryExampleStore(devices.get(id)!);
      this.live.set(id, new ClientExecutor(client, store, { limits: this.limits }));
    }
  }

  async run(): Promise<ProgramRunResult> {
    const base = { cohort: this.cohort, steps: this.steps, failedSessions: this.failedSessions };
    const { steps } = this.program;
    let index = 0;
    try {
      if (this.cohort.length < this.program.cohort.min_clients) {
        throw new ProgramFailure(
          `the cohort has ${this.cohort.length} devices, fewer than its min_clients (${this.program.cohort.min_clients})`,
        );
      }
      this.checkMinimums(0);
      for (; index < steps.length; index++) {
        const failedBefore = this.failedSessions.length;
        const contributed = await this.runStep(steps[index]!, index);
        const entry: StepLog = {
          index,
          op: steps[index]!.op,
          live: this.live.size,
          ...(contributed !== undefined ? { contributed } : {}),
          failedSessions: this.failedSessions.slice(failedBefore),
        };
        this.steps.push(entry);
        this.options.onStep?.(entry);
        if (entry.failedSessions.length > 0) this.checkMinimums(index + 1);
        this.loseState(index);
      }
    } catch (e) {
      if (!(e instanceof ProgramFailure)) throw e;
      return { ...base, outputs: {}, failed: { reason: e.message, step: index } };
    }
    const outputs = Object.fromEntries(
      Object.entries(this.program.outputs).map(([name, v]) => [name, valueToJson(this.server.get(v)!.value)]),
    );
    const values = this.options.serverValues
      ? { values: Object.fromEntries([...this.server].map(([n, v]) => [n, valueToJson(v.value)])) }
      : {};
    return { ...base, outputs, ...values };
  }

  /** Ends every session and frees the server values. */
  release(): void {
    for (const executor of this.live.values()) executor.reset();
    this.live.clear();
    for (const { value } of this.server.values()) disposeValue(value);
    this.server.clear();
  }

  /** Runs one step; an aggregate returns how many devices contributed. */
  private async runStep(step: Step, index: number): Promise<number | undefined> {
    const handle = `h${index}`;
    switch (step.op) {
      case 'server_call': {
        const args = (step.args ?? []).map((a) => this.server.get(a)!.value);
        const value = this.call(step.fn, callArgument(args), index);
        this.server.set(step.result, { value, type: this.signature(step.fn).result });
        return undefined;
      }
      case 'broadcast': {
        const { value, type } = this.server.get(step.value)!;
        const bundle = encodeBundle(value, type);
        return this.toClients(step.result, index, { kind: 'create_value', handle, type, bundle });
      }
      case 'client_data':
        return this.toClients(step.result, index, {
          kind: 'create_data',
          handle,
          collection: step.collection,
        });
      case 'client_call':
        return this.toClients(step.result, index, {
          kind: 'create_call',
          handle,
          fn: step.fn,
          args: (step.args ?? []).map((a) => this.handles.get(a)!),
        });
      case 'client_struct':
        return this.toClients(step.result, index, {
          kind: 'create_struct',
          handle,
          fields: step.fields.map((f) => ({
            ...(f.name !== undefined ? { name: f.name } : {}),
            handle: this.handles.get(f.value)!,
          })),
        });
      case 'client_select':
        return this.toClients(step.result, index, {
          kind: 'create_selection',
          handle,
          source: this.handles.get(step.value)!,
          field: step.field,
        });
      case 'aggregate':
        return this.aggregate(step, index);
      case 'secure_sum':
        return this.secureSum(step, index);
      case 'dispose': {
        const handles = step.values.map((v) => this.handles.get(v)!);
        await this.request(index, { kind: 'dispose', handles });
        for (const v of step.values) this.handles.delete(v);
        return undefined;
      }
    }
  }

  /** Sends a create request to every live device; the value is then held under the request's handle. */
  private async toClients(
    result: string,
    index: number,
    request: ExecutorRequest & { readonly handle: string },
  ): Promise<undefined> {
    await this.request(index, request);
    this.handles.set(result, request.handle);
    return undefined;
  }

  /** Sends a request to every live device, failing the session of each that answers with an error. */
  private async request(index: number, request: ExecutorRequest): Promise<Map<string, ExecutorAnswer>> {
    const answers = new Map<string, ExecutorAnswer>();
    for (const [id, executor] of [...this.live]) {
      const answer = await executor.execute(request);
      if (!answer.ok) this.failSession(id, index, `${answer.code}: ${answer.message}`);
      else answers.set(id, answer);
    }
    return answers;
  }

  /** The contributions of the devices that answered `contribute`: each one's bundle and its type. */
  private async contributions(
    index: number,
    request: ContributeRequest,
  ): Promise<Map<string, { bundle: Uint8Array; type: TffType }>> {
    const out = new Map<string, { bundle: Uint8Array; type: TffType }>();
    for (const [id, a] of await this.request(index, request)) {
      if (a.ok && a.kind === 'contributed') out.set(id, { bundle: a.bundle, type: a.type });
    }
    return out;
  }

  /**
   * Sums the live devices' contributions with the semantics of the step's secure sum (`SecureSum`, as the
   * aggregation workers and the finalizer do once SecAgg has unmasked the sum); a device whose value is out
   * of range has failed its session on its device already. Released only over at least `min_clients`.
   */
  private async secureSum(step: SecureSumStep, index: number): Promise<number> {
    const spec = secureSumSpec(step);
    const handle = this.handles.get(step.value)!;
    const request = { kind: 'contribute', aggregation: step.result, handle, secure_sum: spec } as const;
    const contributions = [...(await this.contributions(index, request))].map(([id, c]) => ({
      id,
      type: c.type,
      tensors: readTypedBundle(c.bundle, c.type).tensors,
    }));
    if (contributions.length < step.min_clients) {
      throw new ProgramFailure(
        `step ${index} (secure_sum ${step.result}): ${contributions.length} devices contributed, fewer than its min_clients (${step.min_clients})`,
      );
    }
    const [first] = contributions;
    const sum = new SecureSum(
      spec.kind,
      first!.tensors.map(() => spec.parameter),
      first!.tensors.map((t) => t.data.length),
    );
    for (const c of contributions) sum.add(c.tensors.map((t) => t.data as Int32Array));
    let sums: Int32Array[];
    try {
      sums = sum.result();
    } catch (e) {
      if (e instanceof AppError)
        throw new ProgramFailure(`step ${index} (secure_sum ${step.result}): ${e.message}`);
      throw e;
    }
    // The sum as the contribution it has the type of, then its V: the server's update reads it from there.
    const bundle = writeBundle(first!.tensors.map((t, leaf) => ({ ...t, data: sums[leaf]! })));
    const upload = decodeBundle(bundle, first!.type);
    const slot = 1 + SECURE_SUM_KINDS.indexOf(spec.kind);
    const value = (upload as StructValue).fields[slot]!.value;
    (upload as StructValue).fields.forEach((f, k) => k !== slot && disposeValue(f.value));
    const V = (first!.type as StructType).fields[slot]!.type;
    this.server.set(step.result, { value, type: V });
    return contributions.length;
  }

  /**
   * Collects the live devices' contributions and folds them as the aggregation workers do: contribution k
   * into partial k mod n, each partial from `zero()`, then `merge` left to right and `report`.
   */
  private async aggregate(step: AggregateStep, index: number): Promise<number> {
    const aggregation = step.result;
    const handle = this.handles.get(step.value)!;
    const bundles = await this.contributions(index, { kind: 'contribute', aggregation, handle });
    // U is accumulate's second parameter field, as a plan's U is (<A, U> -> A).
    const accumulateType = this.signature(step.accumulate).parameter!;
    if (accumulateType.kind !== 'struct') throw new Error(`${step.accumulate} does not take <A, U>`);
    const U = accumulateType.fields[1]!.type;
    const contributions: Value[] = [];
    try {
      for (const [id, { bundle }] of bundles) {
        try {
          // A contribution is an upload <U, <>, <>, <>> (contributionType): U is its first field.
          const upload = decodeBundle(bundle, contributionType(U));
          contributions.push(isStruct(upload) ? upload.fields[0]!.value : upload);
        } catch (e) {
          if (!(e instanceof AppError)) throw e;
          this.failSession(id, index, `${e.code}: ${e.message}`);
        }
      }
      if (contributions.length < step.min_clients) {
        throw new ProgramFailure(
          `step ${index} (aggregate ${aggregation}): ${contributions.length} devices contributed, fewer than its min_clients (${step.min_clients})`,
        );
      }
      const n = Math.max(1, Math.min(this.options.partials ?? 2, contributions.length));
      const accs: Value[] = [];
      try {
        for (let p = 0; p < n; p++) accs.push(this.call(step.zero, undefined, index));
        contributions.forEach((u, k) => {
          const next = this.call(step.accumulate, pair(accs[k % n]!, u), index);
          disposeValue(accs[k % n]!);
          accs[k % n] = next;
        });
      } catch (e) {
        for (const acc of accs) disposeValue(acc);
        throw e;
      }
      const merged = mergeWith(
        accs,
        (a, b) => this.call(step.merge, pair(a, b), index),
        () => this.call(step.zero, undefined, index),
      );
      try {
        const value = this.call(step.report, merged, index);
        this.server.set(step.result, { value, type: this.signature(step.report).result });
      } finally {
        disposeValue(merged);
      }
      return contributions.length;
    } finally {
      for (const u of contributions) disposeValue(u);
    }
  }

  /** Runs a program computation on the server; the step's index is the round that seeds random ops. */
  private call(fn: string, arg: Value | undefined, index: number): Value {
    try {
      return runServerComputation(this.interpreter, this.program, fn, arg, index);
    } catch (e) {
      // A server computation that fails fails the program (a plan's round fails the same way).
      if (e instanceof AppError) throw new ProgramFailure(`step ${index}: ${e.message}`);
      throw e;
    }
  }

  /** A computation's static signature, typed once: server values keep their declared types. */
  private signature(fn: string): Signature {
    let sig = this.signatures.get(fn);
    if (!sig) {
      sig = this.checker.check(this.program.computations[fn]!, fn, `/computations/${fn}`);
      this.signatures.set(fn, sig);
    }
    return sig;
  }

  private failSession(device: string, step: number, reason: string): void {
    this.live.get(device)?.reset();
    this.live.delete(device);
    this.failedSessions.push({ device, step, reason });
  }

  /** Fails the program when an aggregation from step `from` on needs more devices than are live. */
  private checkMinimums(from: number): void {
    const steps = this.program.steps;
    for (let j = from; j < steps.length; j++) {
      const s = steps[j]!;
      if ((s.op === 'aggregate' || s.op === 'secure_sum') && s.min_clients > this.live.size) {
        throw new ProgramFailure(
          `${this.live.size} devices are live, fewer than the min_clients (${s.min_clients}) of step ${j} (${s.op} ${s.result})`,
        );
      }
    }
  }

  /** Devices to lose their state after step `index` drop every handle (their sessions do not know yet). */
  private loseState(index: number): void {
    for (const [id, after] of this.options.loseStateAfterStep ?? []) {
      if (after === index) this.live.get(id)?.reset();
    }
  }
}
