/**
 * SecAgg+ rounds for the fuzz (docs/server.md, "Secure aggregation"): each client of a round runs the
 * honest protocol (src/secagg/protocol-client.ts) over raw HTTP, but at each step its script may first send
 * a hostile message (the honest one mutated, another task's token, another step's message, a replay,
 * garbage) or a damaged masked upload, and may drop out there. Every request goes through the fuzz driver,
 * which holds each answer to the property (no 5xx; every 4xx with a code).
 */
import fc from 'fast-check';
import { bundleLeaves, writeBundle } from '../../../src/codec';
import type { TffType } from '../../../src/compute/types';
import type { SecAggStep } from '../../../src/secagg/protocol';
import { SecAggClientRound } from '../../../src/secagg/protocol-client';
import { maskedUploadType } from '../../../src/secagg/upload-type';
import type { RawAssignment } from '../raw-client';
import { threeSumsOf } from '../secure-plans';
import type { FuzzAnswer, FuzzDriver } from './driver';
import { mutationArb } from './json-arbitraries';
import { applyMutation, cloneJson, Doc, type Json, type Mutation } from './json-mutate';
import type { FuzzRequest } from './plans';

/** The steps a client acts at. */
export const STEPS = ['advertise', 'share', 'upload', 'unmask'] as const;
export type Step = (typeof STEPS)[number];

/** What a client sends at a step before (or instead of) its honest message. */
export type Hostile =
  | { kind: 'mutated'; mutations: Mutation[] }
  | { kind: 'foreign-token' | 'other-step' | 'replay' | 'poll-hostile-wait' }
  /** The honest message sent twice (a retry whose answer was lost): taken once. */
  | { kind: 'repeat' }
  | { kind: 'garbage'; text: string }
  | { kind: 'damaged-upload'; how: 'flip' | 'truncate' | 'out-of-range' | 'plain' };

/** A client's script at one step: a hostile message or none, then the honest one unless it drops. */
export interface StepScript {
  readonly hostile?: Hostile;
  readonly drop: boolean;
}

/** One client of a fuzzed round: its secure-sum input s, and its script at each step. */
export interface ClientScript {
  readonly s: number;
  readonly steps: Readonly<Record<Step, StepScript>>;
}

const JSON_FIELDS = ['keys', 'c', 's', 'shares', 'to', 'ct', 'of', 'kind', 'share'];

function hostileArb(step: Step): fc.Arbitrary<Hostile> {
  const common: Array<fc.Arbitrary<Hostile>> = [
    fc.constantFrom<Hostile>(
      { kind: 'repeat' },
      { kind: 'foreign-token' },
      { kind: 'other-step' },
      { kind: 'replay' },
      { kind: 'poll-hostile-wait' },
    ),
    fc.string({ maxLength: 60 }).map((text): Hostile => ({ kind: 'garbage', text })),
  ];
  if (step === 'upload') {
    return fc.oneof(
      ...common,
      fc
        .constantFrom('flip', 'truncate', 'out-of-range', 'plain')
        .map((how): Hostile => ({ kind: 'damaged-upload', how: how as 'flip' })),
    );
  }
  return fc.oneof(
    { arbitrary: fc.oneof(...common), weight: 1 },
    {
      arbitrary: fc
        .array(mutationArb(JSON_FIELDS), { minLength: 1, maxLength: 3 })
        .map((mutations): Hostile => ({ kind: 'mutated', mutations })),
      weight: 2,
    },
  );
}

function stepScriptArb(step: Step): fc.Arbitrary<StepScript> {
  return fc.record({
    hostile: fc.option(hostileArb(step), { freq: 2, nil: undefined }),
    drop: fc.nat({ max: 11 }).map((n) => n === 0),
  });
}

/** A client's script: mostly honest, with a hostile message at about a third of its steps. */
export function clientScriptArb(): fc.Arbitrary<ClientScript> {
  return fc.record({
    s: fc.integer({ min: 0, max: 255 }),
    steps: fc.record({
      advertise: stepScriptArb('advertise'),
      share: stepScriptArb('share'),
      upload: stepScriptArb('upload'),
      unmask: stepScriptArb('unmask'),
    }),
  });
}

/** A task of a secure round as the fuzz holds it. */
export type SecAggTask = RawAssignment & { readonly secure_aggregation: { readonly url: string } };

/** How a client's run went: whether its honest masked upload was accepted, and whether it tainted the sum. */
export interface ClientRun {
  readonly uploaded: boolean;
  /**
   * A hostile message of its was accepted where the server cannot tell it from an honest one (a share's
   * ciphertext or value, a residue in range): the released sum may then differ from the honest one,
   * as docs/server.md says; the round must still end, and without a 5xx.
   */
  readonly tainted: boolean;
  readonly steps: string[];
}

const path = (url: string) => {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
};

/**
 * Runs one client of a round to its end (done, dropped, or its own drop) by its script, polling its next
 * step as the SDK does. `uploadType` is the plan's plain upload type; `other` another task of the round.
 */
export async function runClient(
  driver: FuzzDriver,
  task: SecAggTask,
  other: SecAggTask,
  uploadType: TffType,
  script: ClientScript,
  deadline: number,
): Promise<ClientRun> {
  const round = new SecAggClientRound();
  const masked = bundleLeaves(maskedUploadType(uploadType));
  const plainLeaves = bundleLeaves(uploadType);
  const headers = (t: SecAggTask, json: boolean): Record<string, string> => ({
    authorization: `Bearer ${t.token}`,
    'x-device-credential': task.device!,
    ...(json ? { 'content-type': 'application/json' } : {}),
  });
  const secagg = (suffix: string, body: string | undefined, t: SecAggTask = task): FuzzRequest => ({
    method: body === undefined ? 'GET' : 'POST',
    path: path(`${task.secure_aggregation.url}${suffix}`),
    headers: headers(t, body !== undefined),
    ...(body === undefined ? {} : { body }),
    label: `secagg ${suffix || 'poll'} of task ${task.task_id}`,
  });
  const upload = (bytes: Uint8Array, label: string): FuzzRequest => ({
    method: 'POST',
    path: path(task.upload_url),
    headers: { ...headers(task, false), 'content-type': 'application/octet-stream' },
    body: bytes,
    label: `${label} of task ${task.task_id}`,
  });
  const endpoint: Record<Exclude<Step, 'upload'>, string> = {
    advertise: '/keys',
    share: '/shares',
    unmask: '/unmask',
  };
  const sent: Partial<Record<Step, string>> = {};
  const done = new Set<Step>();
  const steps: string[] = [];
  let uploaded = false;
  let tainted = false;
  const ok = (a: FuzzAnswer | undefined) => a !== undefined && a.status >= 200 && a.status < 300;

  /** The hostile message of a step, sent; true when the server took it as the step's message. */
  async function hostile(step: Step, h: Hostile, honest: string | Uint8Array): Promise<boolean> {
    const json = typeof honest === 'string' ? honest : undefined;
    const at = step === 'upload' ? undefined : endpoint[step];
    switch (h.kind) {
      case 'mutated': {
        const doc = new Doc(cloneJson(JSON.parse(json!) as Json));
        for (const m of h.mutations) applyMutation(doc, m);
        return ok(await driver.send(secagg(at!, doc.serialize())));
      }
      case 'foreign-token': {
        const answer = await driver.send(
          at === undefined
            ? {
                ...upload(honest as Uint8Array, 'upload with a foreign token'),
                headers: headers(other, false),
              }
            : secagg(at, json, other),
        );
        // Taken, it acted for the other task (as whoever holds a task's token may): the round is no longer
        // the honest one, though this client's own message still goes.
        if (ok(answer)) tainted = true;
        return false;
      }
      case 'other-step': {
        const elsewhere = at === '/keys' ? '/shares' : '/keys';
        await driver.send(secagg(elsewhere, json ?? '{"keys":{"c":"x","s":"y"}}'));
        return false;
      }
      case 'replay': {
        // The last message this client sent at an earlier step, sent again.
        const previous = STEPS.slice(0, STEPS.indexOf(step))
          .reverse()
          .find((p): p is Exclude<Step, 'upload'> => p !== 'upload' && sent[p] !== undefined);
        if (previous) await driver.send(secagg(endpoint[previous], sent[previous]!));
        return false;
      }
      case 'repeat':
        return false; // sent after the honest message, in act()
      case 'poll-hostile-wait':
        await driver.send(secagg('?wait=-1', undefined));
        await driver.send(secagg('?wait=1e9x', undefined));
        return false;
      case 'garbage':
        return ok(
          await driver.send(
            at === undefined ? upload(Buffer.from(h.text), 'garbage upload') : secagg(at, h.text),
          ),
        );
      case 'damaged-upload': {
        const bytes = Uint8Array.from(honest as Uint8Array);
        let body: Uint8Array;
        if (h.how === 'truncate') body = bytes.subarray(0, Math.floor(bytes.length / 2));
        else if (h.how === 'flip') {
          // The last byte is in the last lane's data: a residue that may stay in range, so accepted.
          bytes[bytes.length - 1]! ^= 1;
          body = bytes;
        } else if (h.how === 'out-of-range') body = bundle([2 ** 30, 0], [0, 0], [0, 0]);
        else
          body = writeBundle(
            plainLeaves.map((l) => ({
              name: l.name,
              dtype: 'int32' as const,
              shape: [],
              data: Int32Array.of(1),
            })),
          );
        return ok(await driver.send(upload(body, `damaged upload (${h.how})`)));
      }
    }
  }

  function bundle(...lanes: number[][]): Uint8Array {
    return writeBundle(
      masked.map((l, k) => ({
        name: l.name,
        dtype: 'int32' as const,
        shape: [2, 1],
        data: Int32Array.from(lanes[k]!),
      })),
    );
  }

  /** One step by the script: true to go on polling, false when the client dropped out. */
  async function act(step: Step, honest: string | Uint8Array): Promise<boolean> {
    const { hostile: h, drop } = script.steps[step];
    steps.push(`${step}${h ? ` after ${h.kind}` : ''}${drop ? ', then drops' : ''}`);
    if (h && (await hostile(step, h, honest))) {
      // The server took the hostile message for the step's: the honest one is no longer this client's.
      tainted = true;
      done.add(step);
      return !drop;
    }
    if (drop) return false;
    const answer =
      step === 'upload'
        ? await driver.send(upload(honest as Uint8Array, 'masked upload'))
        : await driver.send(secagg(endpoint[step], honest as string));
    if (step === 'upload' && answer?.status === 202) uploaded = true;
    if (h?.kind === 'repeat') {
      await driver.send(
        step === 'upload'
          ? upload(honest as Uint8Array, 'masked upload again')
          : secagg(endpoint[step], honest as string),
      );
    }
    if (typeof honest === 'string') sent[step] = honest;
    done.add(step);
    return true;
  }

  for (let polls = 0; Date.now() < deadline && polls < 200; polls++) {
    const answer = await driver.send(secagg('?wait=5', undefined));
    if (!answer || answer.status !== 200) break;
    const next = answer.json as SecAggStep;
    if (next.step === 'done' || next.step === 'dropped') break;
    if (next.step === 'wait') continue;
    const step: Step = next.step;
    // A step this client already took (its answer lost to a hostile message the server accepted) is over.
    if (done.has(step)) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    let honest: string | Uint8Array;
    try {
      if (next.step === 'advertise') honest = JSON.stringify(round.advertise());
      else if (next.step === 'share') honest = JSON.stringify(await round.shareKeys(next));
      else if (next.step === 'upload') {
        const x = threeSumsOf(script.s);
        const out = round.maskInput(
          next,
          { bitwidth: [[x.v1]], max_input: [[x.v2]], modulus: [[x.v3]] },
          next.secure_params,
          next.n_max,
        );
        // A client that cannot mask (too few shares reached it) drops out, as the SDK does.
        if (out.status !== 'masked') break;
        honest = bundle(
          Array.from(out.lanes.bitwidth[0]!),
          Array.from(out.lanes.max_input[0]!),
          Array.from(out.lanes.modulus[0]!),
        );
      } else honest = JSON.stringify(round.unmask(next));
    } catch (e) {
      // The honest client refuses what the server sent (a neighbour's garbage share): it drops out.
      steps.push(`${next.step}: the client refused (${(e as Error).message.slice(0, 80)})`);
      break;
    }
    if (!(await act(step, honest))) break;
  }
  return { uploaded, tainted, steps };
}
