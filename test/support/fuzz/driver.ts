/**
 * Sends fuzz requests to a running server over real HTTP, a bounded number at a time over reused
 * keep-alive connections (Node's fetch pools them per origin), and checks every answer against the
 * property: no status >= 500, and every 4xx carries a JSON body `{"error": {"code": "SOME_CODE", ...}}`.
 * Violations are collected rather than thrown, so that one run reports every kind of failure; with
 * `FUZZ_FAILURES_DIR` set, each failing request is written there in full for replay.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FuzzRequest } from './plans';

/** A request whose answer broke the property. */
export interface FuzzFailure {
  readonly label: string;
  readonly method: string;
  readonly path: string;
  readonly status: number | 'no response';
  readonly problem: string;
  /** The first bytes of the request body as text, for the report. */
  readonly excerpt: string;
  /** Where the whole request was written, when FUZZ_FAILURES_DIR is set. */
  readonly file?: string;
}

/** What one answer was. */
export interface FuzzAnswer {
  readonly status: number;
  readonly code?: string;
  readonly json?: unknown;
}

/** The largest body a server may cut off without answering: above MAX_UPLOAD_BYTES' default. */
const CUT_OFF_BYTES = 64 * 1024 * 1024;

/** Machine-readable codes: upper snake case. */
const CODE = /^[A-Z][A-Z0-9_]*$/;

/** Options of {@link FuzzDriver}. */
export interface FuzzDriverOptions {
  readonly url: string;
  readonly operatorToken: string;
  /** Requests in flight at once. */
  readonly concurrency: number;
  /** How long one request may take before it counts as a hang. */
  readonly timeoutMs?: number;
  readonly failuresDir?: string;
  /** A file that receives one JSON line per answer: start time, milliseconds, status, label. */
  readonly traceFile?: string;
}

/** Sends requests and keeps the tally. */
export class FuzzDriver {
  readonly failures: FuzzFailure[] = [];
  /** Answers by status, for the report. */
  readonly statuses = new Map<number, number>();
  /** Answers by error code, for the report. */
  readonly codes = new Map<string, number>();
  sent = 0;
  /** The slowest answers, slowest first: a plan or upload that stalls the server shows here. */
  readonly slowest: Array<{ ms: number; label: string }> = [];

  constructor(private readonly options: FuzzDriverOptions) {}

  /** Sends one request, checks the answer, and returns it (undefined when there was none). */
  async send(req: FuzzRequest): Promise<FuzzAnswer | undefined> {
    this.sent += 1;
    const headers: Record<string, string> = { ...req.headers };
    if (req.operator) headers.authorization = `Bearer ${this.options.operatorToken}`;
    const size =
      req.body === undefined
        ? 0
        : typeof req.body === 'string'
          ? Buffer.byteLength(req.body)
          : req.body.length;
    let res: Response;
    let text: string;
    const t0 = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        res = await fetch(`${this.options.url}${req.path}`, {
          method: req.method,
          headers,
          body: req.body as BodyInit | undefined,
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
        });
        text = await res.text();
        break;
      } catch (err) {
        // A server may close the connection on a body far over its limit before reading it all.
        if (size > CUT_OFF_BYTES) return undefined;
        const cause = String((err as Error).cause ?? '');
        // A kept-alive socket the server closed as idle (its keepAliveTimeout) while this process was busy
        // generating the next batch: retried once on a new connection, as HTTP clients do. A request that
        // makes the server drop the connection fails again and is reported.
        if (attempt === 1 && /ECONNRESET|EPIPE|other side closed|socket hang up/i.test(cause)) continue;
        this.fail(req, 'no response', `no answer: ${(err as Error).message} (${cause})`);
        return undefined;
      }
    }
    this.noteTime(Date.now() - t0, req.label);
    if (this.options.traceFile) {
      const line = { t0, ms: Date.now() - t0, status: res!.status, label: req.label.slice(0, 300) };
      fs.appendFileSync(this.options.traceFile, `${JSON.stringify(line)}\n`);
    }
    this.statuses.set(res.status, (this.statuses.get(res.status) ?? 0) + 1);
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
    if (typeof code === 'string') this.codes.set(code, (this.codes.get(code) ?? 0) + 1);
    if (res.status >= 500) {
      this.fail(
        req,
        res.status,
        `status ${res.status} ${typeof code === 'string' ? code : ''}: ${text.slice(0, 300)}`,
      );
    } else if (res.status >= 400 && (typeof code !== 'string' || !CODE.test(code))) {
      this.fail(req, res.status, `a ${res.status} without a JSON error code: ${text.slice(0, 300)}`);
    }
    return { status: res.status, code: typeof code === 'string' ? code : undefined, json };
  }

  /** Sends every request, at most `concurrency` at a time; `then` sees each answer. */
  async sendAll(
    reqs: readonly FuzzRequest[],
    then?: (req: FuzzRequest, answer: FuzzAnswer | undefined) => Promise<void>,
  ): Promise<void> {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < reqs.length) {
        const req = reqs[next++]!;
        const answer = await this.send(req);
        if (then) await then(req, answer);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, reqs.length) }, lane));
  }

  private noteTime(ms: number, label: string): void {
    const keep = 8;
    if (this.slowest.length >= keep && ms <= this.slowest[keep - 1]!.ms) return;
    this.slowest.push({ ms, label: label.slice(0, 200) });
    this.slowest.sort((a, b) => b.ms - a.ms);
    this.slowest.length = Math.min(this.slowest.length, keep);
  }

  private fail(req: FuzzRequest, status: number | 'no response', problem: string): void {
    const body =
      req.body === undefined
        ? ''
        : typeof req.body === 'string'
          ? req.body
          : Buffer.from(req.body).toString('latin1');
    let file: string | undefined;
    if (this.options.failuresDir) {
      fs.mkdirSync(this.options.failuresDir, { recursive: true });
      file = path.join(this.options.failuresDir, `failure-${this.failures.length + 1}.json`);
      fs.writeFileSync(
        file,
        JSON.stringify(
          {
            label: req.label,
            method: req.method,
            path: req.path,
            headers: req.headers,
            operator: req.operator ?? false,
            status,
            problem,
            body_base64: req.body === undefined ? null : Buffer.from(req.body).toString('base64'),
          },
          null,
          2,
        ),
      );
    }
    this.failures.push({
      label: req.label,
      method: req.method,
      path: req.path.slice(0, 200),
      status,
      problem,
      excerpt: body.slice(0, 400),
      file,
    });
  }

  /** A short report: counts by status and code, and the failures grouped by problem. */
  summary(): string {
    const statuses = [...this.statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`);
    const codes = [...this.codes.entries()].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c}: ${n}`);
    const slow = this.slowest.map((s) => `${s.ms} ms: ${s.label}`);
    return `${this.sent} requests; statuses ${statuses.join(', ')}; codes ${codes.join(', ')}; ${this.failures.length} failures; slowest:\n  ${slow.join('\n  ')}`;
  }
}

/** The failures as readable text, at most `max` of them. */
export function formatFailures(failures: readonly FuzzFailure[], max = 20): string {
  return failures
    .slice(0, max)
    .map(
      (f, i) =>
        `#${i + 1} ${f.method} ${f.path} -> ${f.status}\n  made as: ${f.label}\n  problem: ${f.problem}\n  body: ${JSON.stringify(f.excerpt)}${f.file ? `\n  saved: ${f.file}` : ''}`,
    )
    .join('\n');
}
