/**
 * Fault points for the fault-injection suite (docs/server.md, "Fault injection"). Each is a named place in
 * the code where a test may make the process crash or a step fail. They are compiled in but inert unless
 * armed with `ROUNDHOUSE_FAULTS` (parsed by `loadConfig` and handed to {@link armFaults} at start-up), which
 * production never sets:
 *
 *   ROUNDHOUSE_FAULTS=after-commit-before-ack:1,finalize-before-complete:2:throw
 *
 * `<point>:<n>[:<action>]` acts the n-th time this process reaches the point (counting from 1), once.
 * Actions: `crash` (default: the process kills itself with SIGKILL, as the kernel or an operator would),
 * `throw` (the step throws an `InjectedFault`, as a failed Redis call or a broken backend would), and `hang`
 * (the step waits forever, as a process stopped mid-step would look to everyone else).
 */

/** Every fault point, and where it is. */
export const FAULT_POINTS = [
  /** Worker: its partial and covered ids are committed, the jobs not yet acknowledged. */
  'after-commit-before-ack',
  /** Worker: a batch of uploads was read from Redis, not yet folded. */
  'before-fold',
  /** Engine: the round was finalized (computed), not yet stored as completed. */
  'finalize-before-complete',
  /** Engine: the round is completed, the next attempt not yet opened. */
  'after-complete-before-open',
  /** API: an upload's body was read and checked, not yet stored. */
  'upload-before-accept',
  /** API: an upload was stored (202 not yet sent), its accumulate job not yet queued. */
  'upload-after-accept',
  /** Store: a finished attempt's tasks and partials were moved aside (complete, fail), not yet swept. */
  'before-sweep',
  /** Store: a new plan is in the plans index and its keys are written, not yet in its population's set. */
  'before-population-index',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];
export type FaultAction = 'crash' | 'throw' | 'hang';

interface Armed {
  readonly at: number;
  readonly action: FaultAction;
  hits: number;
}

/** Thrown by a fault point armed with `throw`: an infrastructure fault as far as the caller can tell. */
export class InjectedFault extends Error {
  constructor(readonly point: FaultPoint) {
    super(`injected fault at ${point}`);
    this.name = 'InjectedFault';
  }
}

const armed = new Map<FaultPoint, Armed>();

/**
 * Parses a `ROUNDHOUSE_FAULTS` value; throws naming the bad entry, so that a typo in a test fails loudly
 * instead of arming nothing.
 */
export function parseFaults(spec: string): Map<FaultPoint, { at: number; action: FaultAction }> {
  const out = new Map<FaultPoint, { at: number; action: FaultAction }>();
  for (const entry of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [point, n = '1', action = 'crash', ...rest] = entry.split(':');
    const at = Number(n);
    if (
      rest.length > 0 ||
      !(FAULT_POINTS as readonly string[]).includes(point!) ||
      !Number.isInteger(at) ||
      at < 1 ||
      !['crash', 'throw', 'hang'].includes(action)
    ) {
      throw new Error(
        `ROUNDHOUSE_FAULTS: bad entry "${entry}"; expected <point>:<n>[:crash|throw|hang] with a point among ` +
          FAULT_POINTS.join(', '),
      );
    }
    out.set(point as FaultPoint, { at, action: action as FaultAction });
  }
  return out;
}

/** Arms the fault points of a parsed spec (replacing any armed before). */
export function armFaults(spec: ReadonlyMap<FaultPoint, { at: number; action: FaultAction }>): void {
  armed.clear();
  for (const [point, { at, action }] of spec) armed.set(point, { at, action, hits: 0 });
}

/**
 * Marks that the process reached `point`; does what the armed spec says when this is the n-th time. Inert
 * (one map lookup) when nothing is armed. Async so that `hang` can wait without blocking the event loop.
 */
export async function faultPoint(point: FaultPoint): Promise<void> {
  const a = armed.get(point);
  if (!a) return;
  a.hits += 1;
  if (a.hits !== a.at) return;
  switch (a.action) {
    case 'crash':
      // Written synchronously: a test reads the process's output to know the point was reached.
      process.stderr.write(`roundhouse: injected crash at ${point}\n`);
      process.kill(process.pid, 'SIGKILL');
      // SIGKILL is delivered asynchronously; nothing after the point may run meanwhile.
      await new Promise<never>(() => undefined);
      return;
    case 'throw':
      throw new InjectedFault(point);
    case 'hang':
      await new Promise<never>(() => undefined);
  }
}
