/**
 * How a simulation shows itself: a progress bar of the round in progress (reports over target) on stderr
 * when it is a terminal, and one line per finished round on stdout, or one JSON object with `--json`.
 */
import { SingleBar } from 'cli-progress';
import type { RoundProgress, RoundSummary, SimulationResult } from './simulator';

/** Numbers of an output or evaluation, flattened: `{a: {b: 1}}` becomes `a.b=1`. */
function flat(prefix: string, v: unknown): string[] {
  if (typeof v === 'number') return [`${prefix}=${Number.isInteger(v) ? v : v.toFixed(4)}`];
  if (typeof v === 'boolean') return [`${prefix}=${v}`];
  if (Array.isArray(v)) return [`${prefix}=[${v.length <= 8 ? v.join(',') : `${v.length} values`}]`];
  if (v && typeof v === 'object') {
    return Object.entries(v).flatMap(([k, x]) => flat(prefix ? `${prefix}.${k}` : k, x));
  }
  return [];
}

/** One line for a finished round attempt, e.g. `round  3/50  participants=20  dropped=1  late=4  ...`. */
export function formatSummary(s: RoundSummary): string {
  const width = String(s.rounds).length;
  const head = `round ${String(s.round).padStart(width)}/${s.rounds}${s.attempt > 1 ? ` (attempt ${s.attempt})` : ''}`;
  const counts = [
    `participants=${s.participants}`,
    `assigned=${s.assigned}`,
    `dropped=${s.dropped}`,
    `late=${s.late}`,
    ...(s.abandoned ? [`abandoned=${s.abandoned}`] : []),
    ...(s.rejected ? [`rejected=${s.rejected}`] : []),
    ...(s.errors ? [`errors=${s.errors}`] : []),
    ...secAggCounts(s),
  ];
  const result =
    s.status === 'failed'
      ? [`FAILED: ${s.error ?? 'unknown reason'}`]
      : [...flat('', s.output), ...flat('eval', s.evaluation)];
  return [head, ...counts, ...result, `(${s.seconds.toFixed(1)}s)`].join('  ');
}

/**
 * The SecAgg counts of a round, e.g. `secagg+ cohort=26 shared=26 unmasked=20`: the clients that advertised
 * keys, sent their shares, and answered the unmasking step. Only counts: the server sees nothing else.
 */
function secAggCounts(s: RoundSummary): string[] {
  const sa = s.secureAggregation;
  if (!sa) return [];
  return [`${sa.protocol} cohort=${sa.advertised} shared=${sa.shared} unmasked=${sa.unmasked}`];
}

/** The closing line: why it stopped, the accuracy and the time. */
export function formatResult(r: SimulationResult, target?: number): string {
  const completed = r.rounds.filter((s) => s.status === 'completed').length;
  const why = {
    'plan-finished': `plan ${r.plan.status}`,
    rounds: 'round limit reached',
    'target-accuracy': `target accuracy ${target ?? ''} reached`.replace('  ', ' '),
    aborted: 'stopped',
  }[r.reason];
  const acc = r.accuracy === undefined ? '' : `  held-out accuracy=${r.accuracy.toFixed(4)}`;
  return `done: ${why} after ${completed} round${completed === 1 ? '' : 's'}${acc}  elapsed=${(r.elapsedMs / 1000).toFixed(1)}s`;
}

/**
 * The bar of the round in progress. cli-progress draws only on a terminal, so redirected output gets the
 * per-round lines alone; the bar is cleared before each line so that the two never share a row.
 */
export class RoundBar {
  private readonly bar = new SingleBar({
    format:
      'round {round}/{rounds} [{bar}] {value}/{total} reports | assigned {assigned} | dropped {dropped} | {phase}',
    barsize: 30,
    clearOnComplete: true,
    hideCursor: true,
    stream: process.stderr,
  });
  private shown: string | undefined;

  /** Shows (or moves) the bar for the round in progress. */
  update(p: RoundProgress): void {
    const tag = `${p.round}.${p.attempt}`;
    const payload = {
      round: p.attempt > 1 ? `${p.round}.${p.attempt}` : p.round,
      rounds: p.rounds,
      assigned: p.assigned,
      dropped: p.dropped,
      phase: p.phase,
    };
    if (this.shown !== tag) {
      this.clear();
      this.bar.start(p.target, Math.min(p.reported, p.target), payload);
      this.shown = tag;
    } else {
      this.bar.update(Math.min(p.reported, p.target), payload);
    }
  }

  /** Clears the bar and prints a line to stdout in its place. */
  line(text: string): void {
    this.clear();
    process.stdout.write(`${text}\n`);
  }

  /** Removes the bar (and restores the cursor). */
  clear(): void {
    if (this.shown === undefined) return;
    this.bar.stop();
    this.shown = undefined;
  }
}
