/**
 * The client's side of a round's SecAgg+ exchange over HTTP (docs/server.md, "Secure aggregation"): the same
 * code in Node and browsers. The task polls `GET <secagg url>` for its next step, honouring the server's
 * retry hints, and answers each step with the protocol state it keeps in memory for this task only
 * (src/secagg/protocol-client.ts). The masked input replaces V1..V3 in the upload bundle; U is unchanged.
 */
import { readTypedBundle, writeBundle, type BundleTensor } from '../codec';
import { tensorLeaves, type TffType } from '../compute/types';
import type { PerKind } from '../secagg/masks';
import { SecAggClientRound } from '../secagg/protocol-client';
import type { SecAggStep } from '../secagg/protocol';
import type { Clock } from './clock';
import { isRoundhouseError } from './errors';
import type { Transport } from './transport';

/** How long a task asks the server to hold a poll for its next step (seconds; the server's limit is 30). */
export const SECAGG_POLL_WAIT_S = 20;

/** How long past the reporting deadline a survivor keeps asking for the unmasking step. */
const UNMASK_GRACE_MS = 10 * 60_000;

/** What the exchange needs of the client. */
export interface ExchangeContext {
  readonly transport: Transport;
  /**
   * For polls the server holds until the exchange moves on (`?wait=`): a transport whose timeouts allow
   * `pollWaitS` more. Without it the task polls every `retry_after_ms`, as it must with a server that
   * does not hold polls.
   */
  readonly pollTransport?: Transport;
  readonly pollWaitS?: number;
  readonly clock: Clock;
  readonly random: () => number;
  /** The device credential sent with every step; none in anonymous mode. */
  readonly credential?: () => Promise<string> | string;
}

/** What the exchange needs of a task: a round's assignment, or a session's `contribute` request. */
export interface SecAggTask {
  readonly token: string;
  /** When the task's upload is due (unix ms). */
  readonly deadline: number;
  readonly secure_aggregation: { readonly url: string };
}

/** Why a task left the exchange without its input in the sum. */
export class ExchangeDropped extends Error {
  constructor(readonly reason: string) {
    super(`dropped out of secure aggregation: ${reason}`);
    this.name = 'ExchangeDropped';
  }
}

/** One task's exchange: `keys`, `share`, `mask` (before the upload), `unmask` (after it), in this order. */
export class SecAggExchange {
  private readonly round = new SecAggClientRound();

  constructor(
    private readonly ctx: ExchangeContext,
    private readonly a: SecAggTask,
    private readonly signal?: AbortSignal,
  ) {}

  /** R0: advertises this task's public keys while the round selects. */
  async keys(): Promise<void> {
    const step = await this.next(['advertise', 'share'], this.a.deadline);
    if (step.step === 'advertise') await this.post('/keys', this.round.advertise());
  }

  /** R1: waits for the cohort, then sends one sealed share envelope to each neighbour. */
  async share(): Promise<void> {
    const step = await this.next(['share'], this.a.deadline);
    if (step.step === 'share') await this.post('/shares', await this.round.shareKeys(step));
  }

  /**
   * R2: waits for the key exchange to end, then masks the secure sums of `update`, a bundle of `type`
   * (`<U, V1, V2, V3>`: work's result, or a session's contribution).
   */
  async mask(update: Uint8Array, type: TffType): Promise<Uint8Array> {
    const step = await this.next(['upload'], this.a.deadline);
    if (step.step !== 'upload') throw new ExchangeDropped(`the server answered ${step.step}`);
    const { tensors, metadata } = readTypedBundle(update, type);
    if (type.kind !== 'struct' || type.fields.length !== 4)
      throw new Error('the upload type is not <U, V1, V2, V3>');
    const counts = type.fields.map((f) => tensorLeaves(f.type).length);
    const kinds = ['bitwidth', 'max_input', 'modulus'] as const;
    let at = counts[0]!;
    const parts = kinds.map((_, k) => {
      const part = tensors.slice(at, at + counts[k + 1]!);
      at += counts[k + 1]!;
      return part;
    });
    // Secure-sum tensors are int32 (the plan checker's rule), so their data are numbers.
    const numbers = (k: number): ArrayLike<number>[] => parts[k]!.map((t) => t.data as Int32Array);
    const values: PerKind<ArrayLike<number>> = {
      bitwidth: numbers(0),
      max_input: numbers(1),
      modulus: numbers(2),
    };
    const outcome = this.round.maskInput(step, values, step.secure_params, step.n_max);
    if (outcome.status === 'aborted') throw new ExchangeDropped(outcome.error.message);
    const masked: BundleTensor[] = kinds.flatMap((kind, k) =>
      parts[k]!.map((t, leaf) => ({
        name: t.name,
        dtype: 'int32',
        shape: [2, t.data.length],
        data: outcome.lanes[kind][leaf]!,
      })),
    );
    return writeBundle(
      [...tensors.slice(0, counts[0]!), ...masked],
      Object.keys(metadata).length ? metadata : undefined,
    );
  }

  /** R3: after the upload, sends the shares that take the survivors' and the dropouts' masks off the sum. */
  async unmask(): Promise<void> {
    const step = await this.next(['unmask', 'done'], this.a.deadline + UNMASK_GRACE_MS);
    if (step.step === 'unmask') await this.post('/unmask', this.round.unmask(step));
  }

  /** Polls for one of `wanted`; `dropped` or a step past them ends the exchange for this task. */
  private async next(wanted: readonly SecAggStep['step'][], until: number): Promise<SecAggStep> {
    for (;;) {
      const { pollTransport, pollWaitS = 0 } = this.ctx;
      const hold = pollTransport ? Math.min(pollWaitS, Math.floor((until - this.ctx.clock.now()) / 1000)) : 0;
      const url = new URL(this.a.secure_aggregation.url);
      if (hold > 0) url.searchParams.set('wait', String(hold));
      const step = await (hold > 0 ? pollTransport! : this.ctx.transport).request<SecAggStep>(
        url.toString(),
        { method: 'GET', headers: await this.headers() },
        { signal: this.signal, until },
        async (res) => (await res.json()) as SecAggStep,
      );
      if (wanted.includes(step.step)) return step;
      if (step.step === 'dropped') throw new ExchangeDropped(step.reason);
      if (step.step !== 'wait')
        throw new ExchangeDropped(`expected ${wanted.join(' or ')}, the server is at ${step.step}`);
      if (this.ctx.clock.now() >= until)
        throw new ExchangeDropped('the deadline passed while waiting for the others');
      // Jittered, so that a cohort polling together spreads out (0 after a poll held to its end).
      if (step.retry_after_ms > 0)
        await this.ctx.clock.sleep(step.retry_after_ms * (0.5 + this.ctx.random()), this.signal);
    }
  }

  private async post(path: string, body: unknown): Promise<void> {
    try {
      await this.ctx.transport.request(
        `${this.a.secure_aggregation.url}${path}`,
        {
          method: 'POST',
          headers: { ...(await this.headers()), 'content-type': 'application/json' },
          body: JSON.stringify(body),
        },
        { signal: this.signal },
        (res) => res.arrayBuffer(),
      );
    } catch (e) {
      // A retried step whose first try was stored after all (its answer lost).
      if (isRoundhouseError(e, 'SECAGG_ALREADY_SENT')) return;
      // The step closed between the poll and the post: the exchange goes on without this task.
      for (const code of ['SECAGG_PHASE', 'SECAGG_NOT_IN_COHORT', 'SECAGG_NOT_SURVIVOR'] as const) {
        if (isRoundhouseError(e, code)) throw new ExchangeDropped(e.message);
      }
      throw e;
    }
  }

  private async headers(): Promise<Record<string, string>> {
    const credential = await this.ctx.credential?.();
    return {
      authorization: `Bearer ${this.a.token}`,
      ...(credential !== undefined ? { 'x-device-credential': credential } : {}),
    };
  }
}
