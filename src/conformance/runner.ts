/**
 * Runs an external client against the conformance kit (conformance/README.md, "The client command"): for
 * each case, `sh -c '<client-cmd> <client-plan.json> <broadcast.safetensors> <examples.csv> <out.safetensors>'`
 * with the four absolute paths appended shell-quoted, then judges its exit code and upload.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TffType } from '../compute/types';
import { compareUpload } from './compare';
import { caseDir, KIT_FILES, type KitCase } from './kit';

/** The output file a client writes, in the case's work directory. */
export const OUT_FILE = 'out.safetensors';

/** How one case went. */
export interface CaseResult {
  readonly id: string;
  readonly plan: string;
  readonly expect: KitCase['expect'];
  readonly status: 'pass' | 'fail';
  /** Why it failed, or how it passed (a refusal's exit code). */
  readonly reason: string;
  /** Wall-clock time of the client command. */
  readonly ms: number;
}

/** What a run needs. */
export interface RunOptions {
  /** The kit directory (holding manifest.json). */
  readonly kit: string;
  /** The client command; the four paths are appended. */
  readonly clientCmd: string;
  /** Per case; the client's process group is killed past it. */
  readonly timeoutMs: number;
  /** Keep every case's output in `<keep>/<id>/` rather than a temporary directory removed afterwards. */
  readonly keep?: string;
}

/** Quotes a word for `sh`: single quotes, each inner single quote written as '\''. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly stderr: string;
}

/** Keeps the last 16 KiB of the client's standard error: enough for its message, bounded for a chatty one. */
const STDERR_KEPT = 16 << 10;

function runCommand(command: string, timeoutMs: number): Promise<Exit> {
  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout ends the client and whatever it started, not only `sh`.
    const child = spawn('sh', ['-c', command], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEPT);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group is gone already.
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stderr });
    });
  });
}

/**
 * What the client said on standard error, on one line: all of it when short, else its first lines (where an
 * error message starts) and its last (where a traceback ends).
 */
function lastWords(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const shown = lines.length <= 6 ? lines : [...lines.slice(0, 3), '...', ...lines.slice(-2)];
  const text = shown.join(' | ');
  return text === '' ? '(nothing on stderr)' : text.length > 600 ? `...${text.slice(-600)}` : text;
}

function exitText(e: Exit): string {
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

/** Runs the client on one case in `work` (its own directory) and judges the result. */
export async function runCase(c: KitCase, options: RunOptions, work: string): Promise<CaseResult> {
  const dir = caseDir(options.kit, c);
  const inputs = [KIT_FILES.clientPlan, KIT_FILES.broadcast, KIT_FILES.examples].map((f) =>
    path.resolve(dir, f),
  );
  const out = path.resolve(work, OUT_FILE);
  fs.mkdirSync(work, { recursive: true });
  fs.rmSync(out, { force: true });
  const result = (status: CaseResult['status'], reason: string, ms: number): CaseResult => ({
    id: c.id,
    plan: c.plan,
    expect: c.expect,
    status,
    reason,
    ms,
  });
  const missing = [...inputs, ...(c.expect === 'upload' ? [path.join(dir, KIT_FILES.expected)] : [])].find(
    (f) => !fs.existsSync(f),
  );
  if (missing) return result('fail', `the kit has no ${path.relative(options.kit, missing)}`, 0);

  const command = [options.clientCmd, ...[...inputs, out].map(shellQuote)].join(' ');
  const start = performance.now();
  const exit = await runCommand(command, options.timeoutMs);
  const ms = Math.round(performance.now() - start);
  if (exit.timedOut) return result('fail', `timed out after ${options.timeoutMs} ms`, ms);
  if (c.expect === 'refuse') {
    return exit.code === 0
      ? result('fail', `exited 0, but a client must refuse this case (${c.description})`, ms)
      : result('pass', `refused: ${exitText(exit)}`, ms);
  }
  if (exit.code !== 0) return result('fail', `${exitText(exit)}: ${lastWords(exit.stderr)}`, ms);
  if (!fs.existsSync(out)) return result('fail', `exited 0 without writing ${OUT_FILE}`, ms);
  const uploadType = (JSON.parse(fs.readFileSync(inputs[0]!, 'utf8')) as { upload_type: TffType })
    .upload_type;
  const why = compareUpload(
    fs.readFileSync(out),
    fs.readFileSync(path.join(dir, KIT_FILES.expected)),
    uploadType,
    c.tolerance!,
  );
  return why === undefined ? result('pass', 'upload matches', ms) : result('fail', why, ms);
}

/** Runs the client on every case in order, reporting each result as it comes; returns them all. */
export async function runCases(
  cases: readonly KitCase[],
  options: RunOptions,
  onResult: (r: CaseResult) => void = () => {},
): Promise<CaseResult[]> {
  const root = options.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'roundhouse-conformance-'));
  try {
    const results: CaseResult[] = [];
    for (const c of cases) {
      const r = await runCase(c, options, caseDir(root, c));
      onResult(r);
      results.push(r);
    }
    return results;
  } finally {
    if (options.keep === undefined) fs.rmSync(root, { recursive: true, force: true });
  }
}
