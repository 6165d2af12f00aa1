import { Command, Option } from 'commander';
import * as path from 'node:path';
import { readManifest, type KitCase } from '../conformance/kit';
import { runCases, type CaseResult } from '../conformance/runner';
import { EXIT, resolveIo, type CliIo } from './conventions';
import { positiveInt } from './run-local';
import { packageRoot } from './version';

/** The kit shipped with the package: `conformance/` beside package.json, from src/ and dist/ alike. */
export function defaultKitDir(): string {
  return path.join(packageRoot(), 'conformance');
}

/** `--case a,b --case c` as one list of prefixes. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((v) => v.trim())];
}

/**
 * The cases a list of id prefixes selects, in manifest order: a prefix names whole path segments
 * (`histogram` selects `histogram/secure`, `fedavg/dp` does not select `fedavg/dp-clipped`). Returns the
 * prefixes that select nothing instead when there are any.
 */
export function selectCases(
  cases: readonly KitCase[],
  prefixes: readonly string[],
): { cases: KitCase[] } | { unknown: string[] } {
  if (prefixes.length === 0) return { cases: [...cases] };
  const selects = (p: string, c: KitCase) => c.id === p || c.id.startsWith(p.endsWith('/') ? p : `${p}/`);
  const unknown = prefixes.filter((p) => p === '' || !cases.some((c) => selects(p, c)));
  if (unknown.length > 0) return { unknown };
  return { cases: cases.filter((c) => prefixes.some((p) => selects(p, c))) };
}

function line(r: CaseResult): string {
  return r.status === 'pass' ? `PASS ${r.id} (${r.reason})\n` : `FAIL ${r.id}: ${r.reason}\n`;
}

interface ConformanceOptions {
  clientCmd: string;
  dir?: string;
  case: string[];
  json?: boolean;
  timeoutMs: number;
  keep?: string;
}

/**
 * `roundhouse conformance --client-cmd "<cmd>"`: runs a client against the conformance kit
 * (conformance/README.md) and prints one line per case and a summary (`--json`: one object per line). Exit 0
 * when every case passes, 1 when any fails or the kit cannot be read, 2 on a usage mistake (an unknown case
 * prefix lists the plans and ids).
 */
export function conformanceCommand(io: CliIo = {}): Command {
  const { out, exit } = resolveIo(io);
  const cmd = new Command('conformance')
    .description('run a client command against the conformance kit (conformance/README.md)')
    .requiredOption(
      '--client-cmd <cmd>',
      'shell command of the client; each case appends <client-plan.json> <broadcast.safetensors> <examples.csv> <out.safetensors>',
    )
    .option('--dir <dir>', "the kit's directory (default: the package's conformance/)")
    .addOption(
      new Option(
        '--case <prefix>',
        'run only the cases whose id starts with these path segments (repeatable or a comma list: federated-sum,histogram/secure)',
      )
        .argParser(collect)
        .default([], 'every case'),
    )
    .option('--json', 'print one JSON object per case, then a summary object')
    .option('--timeout-ms <n>', 'time each case may take', positiveInt('--timeout-ms'), 60_000)
    .option(
      '--keep <dir>',
      "keep every case's out.safetensors in <dir>/<id>/ (default: a temporary directory)",
    )
    .action(async (opts: ConformanceOptions) => {
      const kit = path.resolve(opts.dir ?? defaultKitDir());
      const manifest = readManifest(kit);
      const selected = selectCases(manifest.cases, opts.case);
      if ('unknown' in selected) {
        const plans = [...new Set(manifest.cases.map((c) => c.plan))];
        return cmd.error(
          `error: no case starts with ${selected.unknown.map((p) => `'${p}'`).join(', ')}; the plans are ` +
            `${plans.join(', ')} and the cases ${manifest.cases.map((c) => c.id).join(', ')}`,
          { exitCode: EXIT.usage, code: 'roundhouse.invalidOption' },
        );
      }
      const results = await runCases(
        selected.cases,
        {
          kit,
          clientCmd: opts.clientCmd,
          timeoutMs: opts.timeoutMs,
          ...(opts.keep === undefined ? {} : { keep: path.resolve(opts.keep) }),
        },
        (r) => out(opts.json ? `${JSON.stringify(r)}\n` : line(r)),
      );
      const failed = results.filter((r) => r.status === 'fail').length;
      const summary = { cases: results.length, passed: results.length - failed, failed };
      out(
        opts.json
          ? `${JSON.stringify({ summary })}\n`
          : `${summary.cases} case${summary.cases === 1 ? '' : 's'}: ${summary.passed} passed, ${summary.failed} failed\n`,
      );
      if (failed > 0) exit(EXIT.failure);
    });
  return cmd;
}
