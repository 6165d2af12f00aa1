/**
 * Where a client's examples come from: the platform interface the portable client core is given (in the
 * manner of Federated Compute's example stores). Browser-safe; the file-backed store is in `./node`.
 */
import type { TffType } from '../compute/types';
import { allocateLeaf, exampleLeaves, type ClientExamples } from '../data';

/**
 * A client's local data, by collection (a plan's `client_data.collection`). The plan's batch `element` type
 * and `batchSize` are passed so that a store can produce data in the plan's shape (or check it); a store
 * that holds nothing for a collection answers zero examples, and the client then abandons the task.
 */
export interface ExampleStore {
  examples(collection: string, element: TffType, batchSize: number): Promise<ClientExamples>;
}

/** Zero examples shaped for `element`: one empty typed array per leaf. */
export function emptyExamples(element: TffType): ClientExamples {
  return { count: 0, leaves: exampleLeaves(element).map((leaf) => allocateLeaf(leaf, 0)) };
}

/** Examples held in memory, fixed at construction (tests, simulations). */
export class MemoryExampleStore implements ExampleStore {
  private readonly data: ReadonlyMap<string, ClientExamples>;

  constructor(data: Readonly<Record<string, ClientExamples>> | ReadonlyMap<string, ClientExamples>) {
    this.data = data instanceof Map ? new Map(data) : new Map(Object.entries(data));
  }

  async examples(collection: string, element: TffType, _batchSize?: number): Promise<ClientExamples> {
    return this.data.get(collection) ?? emptyExamples(element);
  }
}

/**
 * Examples a web page provides and may change at any time (drawn digits, a user's selection): each task
 * reads what is set when it runs, so a change applies from the next task on.
 */
export class PageExampleStore implements ExampleStore {
  private readonly data = new Map<string, ClientExamples>();

  /** Sets (replaces) a collection's examples. */
  set(collection: string, examples: ClientExamples): void {
    this.data.set(collection, examples);
  }

  /** Forgets one collection's examples, or every collection's when none is named. */
  clear(collection?: string): void {
    if (collection === undefined) this.data.clear();
    else this.data.delete(collection);
  }

  async examples(collection: string, element: TffType, _batchSize?: number): Promise<ClientExamples> {
    return this.data.get(collection) ?? emptyExamples(element);
  }
}
