import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { calledFunction } from '../compute/checker';
import type { Limits } from '../compute/limits';
import type { TffType } from '../compute/types';
import type { Computation } from '../generated/computation';
import type { Plan } from '../generated/plan';
import { checkPlan, type CheckedPlan } from '../plan/validate';
import type { RoundStore } from '../store/types';
import type { LoadedPlan, PlanCache } from './contracts';
import { CLIENT_PLAN_FORMAT } from '../client/types';

export { CLIENT_PLAN_FORMAT };

/** What a client needs to run a plan's `work`: served at `GET /v1/plans/{id}/client-plan`. */
export interface ClientPlan {
  readonly format: typeof CLIENT_PLAN_FORMAT;
  readonly plan_id: string;
  readonly work: Computation;
  /** The named functions `work` reaches (directly or through other functions), and only those. */
  readonly functions: Record<string, Computation>;
  readonly client_data: Plan['client_data'];
  /** C, the type of the round's broadcast bundle. */
  readonly broadcast_type: TffType;
  /** `<U, V1, V2, V3>`, the type of the bundle a client uploads. */
  readonly upload_type: TffType;
}

/** The functions a computation reaches through call, fold, repeat and value_and_grad nodes, transitively. */
export function reachableFunctions(
  root: Computation,
  functions: Readonly<Record<string, Computation>>,
): Record<string, Computation> {
  // A Map, not an object: a function name is user input, and `__proto__` assigned into `{}` vanishes.
  const out = new Map<string, Computation>();
  const queue: Computation[] = [root];
  for (let comp = queue.pop(); comp; comp = queue.pop()) {
    for (const node of comp.nodes) {
      const name = calledFunction(node);
      if (name === undefined || out.has(name) || !Object.hasOwn(functions, name)) continue;
      out.set(name, functions[name]!);
      queue.push(functions[name]!);
    }
  }
  // Sorted, so that the document (and its ETag) does not depend on the order of discovery.
  // Object.fromEntries defines own properties, so every name, `__proto__` included, survives.
  return Object.fromEntries([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Builds a checked plan's {@link LoadedPlan}: the upload type and the client plan document with its ETag. */
export function loadPlan(id: string, checked: CheckedPlan): LoadedPlan {
  const { plan, types } = checked;
  const uploadType = checked.signatures.work!.result;
  const doc: ClientPlan = {
    format: CLIENT_PLAN_FORMAT,
    plan_id: id,
    work: plan.computations.work,
    functions: reachableFunctions(plan.computations.work, plan.functions ?? {}),
    client_data: plan.client_data,
    broadcast_type: types.C,
    upload_type: uploadType,
  };
  const json = JSON.stringify(doc);
  const etag = `"${createHash('sha256').update(json).digest('hex')}"`;
  return { id, checked, uploadType, clientPlan: { json, etag } };
}

/** The default of `PLAN_CACHE_SIZE`, as in src/config.ts. */
export const PLAN_CACHE_SIZE = 64;

/**
 * {@link PlanCache} over the round store: a plan is read and checked once per process and kept, since
 * plans never change once submitted, up to `maxSize` plans (the least recently used leaves first; it is
 * read and checked again when needed). Missing plans are not remembered (one may be submitted later).
 */
export class StorePlanCache implements PlanCache {
  private readonly loaded: LRUCache<string, Promise<LoadedPlan | undefined>>;

  constructor(
    private readonly store: RoundStore,
    private readonly limits: Limits,
    maxSize = PLAN_CACHE_SIZE,
  ) {
    this.loaded = new LRUCache({ max: maxSize });
  }

  /** Forgets a plan (it was deleted), so that this process stops serving it. */
  forget(id: string): void {
    this.loaded.delete(id);
  }

  get(id: string): Promise<LoadedPlan | undefined> {
    let entry = this.loaded.get(id);
    if (!entry) {
      entry = this.load(id);
      this.loaded.set(id, entry);
      // Forget misses and failures, so that a later call asks the store again (unless the entry was evicted
      // or forgotten and then loaded anew meanwhile: that newer entry stays).
      const settled = entry;
      const drop = () => {
        if (this.loaded.peek(id) === settled) this.loaded.delete(id);
      };
      entry.then((p) => {
        if (!p) drop();
      }, drop);
    }
    return entry;
  }

  private async load(id: string): Promise<LoadedPlan | undefined> {
    const json = await this.store.getPlanJson(id);
    if (json === undefined) return undefined;
    return loadPlan(id, checkPlan(JSON.parse(json), this.limits));
  }
}
