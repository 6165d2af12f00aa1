/**
 * One isolate: a worker thread started by `IsolatePool` that runs plan tasks (and stateful programs' server
 * computations) one at a time with a `LocalEvaluator` on its own TensorFlow.js backend. Plain JS at run
 * time (dist/src/isolate/isolate-entry.js).
 *
 * A plan error (an `AppError`) is answered and the isolate stays. A backend fault (WebAssembly memory cap
 * reached, an abort, memory access out of bounds, any non-`AppError`, or a backend that no longer computes
 * 1 + 2) is answered as `fault`, and the host replaces the isolate: a broken backend never serves another
 * task. Crashes, heap exhaustion (`resourceLimits`) and timeouts are seen by the host directly.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { AppError } from '../errors';
import { backendFault } from './backend-fault';
import type { PlanRef, ProgramRef } from './contract';
import { LocalEvaluator } from './local-evaluator';
import {
  documentKind,
  type HostMessage,
  type IsolateData,
  type StartReply,
  type TaskReply,
  type TaskRequest,
} from './protocol';
import { capHit, capWasmMemory } from './wasm-cap';
import { injectFault } from './test-faults';

const data = workerData as IsolateData;
const port = parentPort!;
const evaluator = new LocalEvaluator(data.limits);
/** The task waiting for its document (its bytes arrived already, possibly transferred). */
let parked: TaskRequest | undefined;

async function start(): Promise<void> {
  capWasmMemory(data.maxWasmBytes);
  let backend: string | undefined;
  try {
    // WASM first: its memory is capped above, and a fault stays inside this thread. The native
    // tfjs-node backend is never used here, since a native crash would take the whole process.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-backend-wasm');
    if (await tf.setBackend('wasm')) backend = 'wasm';
  } catch {
    // fall back to the CPU backend below
  }
  if (!backend && (await tf.setBackend('cpu'))) backend = 'cpu';
  if (!backend || !backendWorks()) {
    port.postMessage({
      kind: 'start-failed',
      message: 'no TensorFlow.js backend could be initialised',
    } satisfies StartReply);
    return;
  }
  port.on('message', (msg: HostMessage) => {
    if (msg.op === 'tensors') {
      const reply: TaskReply = { id: msg.id, kind: 'ok', value: tf.memory().numTensors };
      return void port.postMessage(reply);
    }
    if (msg.op !== 'resume') return void serve(msg);
    const req = parked;
    parked = undefined;
    if (req) void serve({ ...req, id: msg.id, doc: { id: req.doc.id, json: msg.json } });
  });
  port.postMessage({ kind: 'started', backend } satisfies StartReply);
}

async function serve(req: TaskRequest): Promise<void> {
  let reply: TaskReply;
  try {
    const kind = documentKind(req.op);
    if (req.doc.json === undefined && !evaluator.has(kind, req.doc.id)) {
      parked = req;
      port.postMessage({ id: req.id, kind: 'need-plan' } satisfies TaskReply);
      return;
    }
    // A plan or a program, by `kind`: both refs are an id and the document.
    const ref: PlanRef & ProgramRef = {
      id: req.doc.id,
      document: req.doc.json === undefined ? undefined : (JSON.parse(req.doc.json) as unknown),
    };
    if (data.testFaults) {
      const round = req.op === 'materials' ? req.round : req.op === 'initialize' ? 0 : req.task.round;
      const name =
        kind === 'program' ? evaluator.programOf(ref).program.name : evaluator.planOf(ref).plan.name;
      injectFault(name, req.op, round, data.maxWasmBytes, data.onceFaults);
    }
    const value = await run(req, ref);
    reply = { id: req.id, kind: 'ok', value };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (e instanceof AppError && !capHit() && !backendFault(e)) {
      const firstLine = e.message.split('\n')[0] ?? '';
      reply = {
        id: req.id,
        kind: 'error',
        code: e.code,
        // The message as thrown, without the ":" that AppError appends before its details: the host
        // builds an AppError from it again, and the API's answer must not depend on where the task ran.
        message: e.details.length ? firstLine.replace(/:$/, '') : firstLine,
        details: e.details,
      };
    } else {
      reply = { id: req.id, kind: 'fault', message: message.split('\n')[0] ?? message };
    }
  }
  // An error may have left the backend broken without saying so: check before serving again.
  if (reply.kind !== 'ok' && reply.kind !== 'fault' && !backendWorks()) {
    reply = { id: req.id, kind: 'fault', message: `the backend stopped working after: ${reply.message}` };
  }
  // A folded partial, or a program call's result, is used once by the host: move it rather than copy it.
  const moved =
    reply.kind !== 'ok'
      ? undefined
      : req.op === 'fold'
        ? (reply.value as { partial: Uint8Array }).partial
        : req.op === 'call'
          ? (reply.value as Uint8Array)
          : undefined;
  port.postMessage(reply, moved && isWhole(moved) ? [moved.buffer as ArrayBuffer] : []);
}

/** Whether the bytes span their whole ArrayBuffer (so that moving the buffer moves nothing else). */
function isWhole(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
}

function run(req: TaskRequest, ref: PlanRef & ProgramRef): Promise<unknown> {
  switch (req.op) {
    case 'initialize':
      return evaluator.initialize(ref);
    case 'materials':
      return evaluator.materials(ref, req.state, req.round);
    case 'fold':
      return evaluator.fold(ref, req.task);
    case 'finalize':
      return evaluator.finalize(ref, req.task);
    case 'call':
      return evaluator.callProgram(ref, req.task);
  }
}

/** 1 + 2 on the backend: false when it is broken (after an abort the WASM heap is not usable). */
function backendWorks(): boolean {
  try {
    return tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]) === 3 && !capHit();
  } catch {
    return false;
  }
}

void start();
