/**
 * How `roundhouse simulate --program` shows a run: one line per change of the program while it runs, and at
 * the end its status, outputs (or the server's reason), what became of the devices, and the time taken.
 */
import type { ProgramDetail } from '../client/operator';
import type { ProgramSimulationResult } from './program-simulator';

/** A line for a change of the running program: status, step and live sessions. */
export function formatProgramProgress(p: ProgramDetail): string {
  return `program ${p.id}: ${p.status}, step ${p.step}/${p.steps}, ${p.live} of ${p.cohort} devices live`;
}

/** The closing report; outputs longer than `outputWidth` characters are cut. */
export function formatProgramResult(r: ProgramSimulationResult, outputWidth = 100): string {
  const p = r.program;
  const seconds = (r.elapsedMs / 1000).toFixed(1);
  const lines = [
    `program ${p.id} (${p.name}): ${p.status}${r.aborted ? ' (simulation stopped)' : ''} at step ${p.step}/${p.steps} after ${seconds} s`,
  ];
  if (p.error) lines.push(`reason: ${p.error}`);
  const c = r.counts;
  lines.push(
    `devices: ${r.devices.length}: ${c.completed} completed, ${c.died} died mid-program, ${c.failed} failed, ` +
      `${c.left} left, ${c['not-recruited']} not recruited (server sessions: ${p.sessions.live} live, ` +
      `${p.sessions.failed} failed, ${p.sessions.left} left)`,
  );
  for (const d of r.devices) {
    if (d.fate === 'failed' || d.fate === 'left')
      lines.push(
        `  ${d.device} ${d.fate}: ${[d.code, d.reason].filter(Boolean).join(': ') || 'no reason given'}`,
      );
  }
  lines.push(...outputLines(p.outputs, outputWidth));
  return `${lines.join('\n')}\n`;
}

/** A program's outputs, one line each cut to `width` characters (none when it released none). */
export function outputLines(outputs: unknown, width: number): string[] {
  if (outputs === undefined || outputs === null || typeof outputs !== 'object') return [];
  return [
    'outputs:',
    ...Object.entries(outputs as Record<string, unknown>).map(([name, value]) => {
      const text = JSON.stringify(value);
      return `  ${name}: ${text.length <= width ? text : `${text.slice(0, width - 1)}…`}`;
    }),
  ];
}
