/**
 * The client conformance kit (conformance/README.md): the committed kit is what the generator writes from
 * the reference interpreter today, the reference client (`roundhouse work`, the built CLI: `npm test` builds
 * first; alone: `npm run build`) passes every case under `roundhouse conformance`, a wrong client fails with
 * the case, tensor and index named, and usage mistakes exit 2.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readBundle } from '../src/codec';
import type { TffType } from '../src/compute/types';
import { runInProcess } from '../src/cli/run-in-process.jest';
import { program } from '../src/cli/main';
import { compareUpload } from '../src/conformance/compare';
import { generateCases } from '../src/conformance/generate';
import { caseDir, KIT_FILES, manifestText, readManifest } from '../src/conformance/kit';
import { shellQuote } from '../src/conformance/runner';
import { PLAN_LIBRARY } from '../src/plans';

const root = path.join(__dirname, '..');
const kit = path.join(root, 'conformance');
const bin = path.join(root, 'bin', 'roundhouse.js');
const wrongClient = (mode: string) =>
  `${shellQuote(process.execPath)} ${shellQuote(path.join(__dirname, 'fixtures', 'wrong-client.js'))} ${mode}`;
const conformance = (...args: string[]) => runInProcess(program, ['conformance', ...args]);
/** `roundhouse conformance` with the wrong client in `mode` on the cases `cases` selects. */
const wrongRun = (mode: string, cases: string, ...more: string[]) =>
  conformance('--client-cmd', wrongClient(mode), '--case', cases, ...more);

describe('the committed kit', () => {
  test('is what the generator writes today (plans and examples byte for byte, uploads within tolerance)', async () => {
    const fresh = await generateCases();
    const manifest = readManifest(kit);
    expect(fs.readFileSync(path.join(kit, KIT_FILES.manifest), 'utf8')).toBe(
      manifestText(fresh.map((c) => c.entry)),
    );
    // Every library plan has upload cases, and the kit has the three refusals the contract names.
    const plans = new Set(manifest.cases.filter((c) => c.expect === 'upload').map((c) => c.plan));
    expect([...plans].sort()).toEqual(Object.keys(PLAN_LIBRARY).sort());
    expect(manifest.cases.filter((c) => c.expect === 'refuse').map((c) => c.id)).toEqual(
      expect.arrayContaining([
        'federated-sum/unknown-format',
        'temperature-sensor/broadcast-nan',
        'fedavg/label-out-of-range',
      ]),
    );
    for (const { entry, files } of fresh) {
      const dir = caseDir(kit, entry);
      const committed = (name: string) => fs.readFileSync(path.join(dir, name));
      for (const name of [KIT_FILES.clientPlan, KIT_FILES.examples]) {
        expect(`${entry.id}/${name}: ${committed(name).toString('utf8')}`).toBe(
          `${entry.id}/${name}: ${String(files[name])}`,
        );
      }
      // Broadcasts are exact on one backend; compared by value, they do not depend on which one ran.
      const broadcast = (bytes: Uint8Array) =>
        readBundle(bytes).tensors.map((t) => ({ ...t, data: Array.from(t.data, (v) => +v.toPrecision(6)) }));
      expect(broadcast(committed(KIT_FILES.broadcast))).toEqual(
        broadcast(files[KIT_FILES.broadcast] as Uint8Array),
      );
      expect(fs.existsSync(path.join(dir, KIT_FILES.expected))).toBe(entry.expect === 'upload');
      if (entry.expect === 'upload') {
        const doc = JSON.parse(String(files[KIT_FILES.clientPlan])) as { upload_type: TffType };
        const fresh = files[KIT_FILES.expected] as Uint8Array;
        expect(
          `${entry.id}: ${compareUpload(fresh, committed(KIT_FILES.expected), doc.upload_type, entry.tolerance!) ?? 'same'}`,
        ).toBe(`${entry.id}: same`);
      }
    }
    // The kit's README lists every case.
    const readme = fs.readFileSync(path.join(kit, 'README.md'), 'utf8');
    expect(manifest.cases.filter((c) => !readme.includes(`| \`${c.id}\``)).map((c) => c.id)).toEqual([]);
    // Small enough to ship in the package and to read in a review.
    const bytes = (dir: string): number =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .reduce(
          (n, e) =>
            n + (e.isDirectory() ? bytes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size),
          0,
        );
    expect(bytes(kit)).toBeLessThan(1 << 20);
    // No stray case directories: every directory below a plan's is a case of the manifest.
    const dirs = fs
      .readdirSync(kit, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .flatMap((d) => fs.readdirSync(path.join(kit, d.name)).map((c) => `${d.name}/${c}`));
    expect(dirs.sort()).toEqual(manifest.cases.map((c) => c.id).sort());
  });
});

describe('roundhouse conformance', () => {
  test('ROUNDHOUSE_BACKEND=cpu puts a built command on the CPU backend', async () => {
    const backendJs = path.join(root, 'dist', 'src', 'compute', 'backend.js');
    const said = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['-e', `require(${JSON.stringify(backendJs)}).initBackend().then((b) => console.log(b))`],
        { env: { ...process.env, ROUNDHOUSE_BACKEND: 'cpu' } },
        (err, stdout) => (err ? reject(err) : resolve(stdout.trim())),
      ),
    );
    expect(said).toBe('cpu');
  });

  // CPU too: the backend a browser without WASM falls back to must give the same uploads.
  test.each(['wasm', 'cpu'])(
    'the reference client (roundhouse work, built) passes every case on %s',
    async (backend) => {
      if (!fs.existsSync(path.join(root, 'dist', 'src', 'cli', 'conformance.js')))
        throw new Error('dist/ is missing or stale: run `npm run build` first');
      const client = `${shellQuote(process.execPath)} ${shellQuote(bin)} work`;
      const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [bin, 'conformance', '--client-cmd', client, '--json'],
          { cwd: root, timeout: 170_000, env: { ...process.env, ROUNDHOUSE_BACKEND: backend } },
          (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, stdout, stderr }),
        );
      });
      const lines = run.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const cases = readManifest(kit).cases;
      expect(lines.slice(0, -1).filter((l) => l.status !== 'pass')).toEqual([]);
      expect(lines.slice(0, -1).map((l) => l.id)).toEqual(cases.map((c) => c.id));
      expect(lines.at(-1)).toEqual({ summary: { cases: cases.length, passed: cases.length, failed: 0 } });
      expect(run.code).toBe(0);
    },
  );

  test('a float off by one fails the case, naming the tensor, the index and both values', async () => {
    const r = await wrongRun('flip', 'mean/one-value,fedavg/one-epoch');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /^FAIL mean\/one-value: tensor 0\/sum index 0: got 0\.7, expected -0\.3 \(tolerance abs 0 \+ rel 1\.2e-7 x \|expected\|\)$/m,
    );
    expect(r.out).toMatch(/^FAIL fedavg\/one-epoch: tensor 0\/delta\/w0 index 0 \[0,0\]: got .*, expected /m);
    expect(r.out).toMatch(/^2 cases: 0 passed, 2 failed$/m);
  });

  test("a wrong tensor name fails with the reader's details; exit 0 on a refuse case fails", async () => {
    const renamed = await wrongRun('rename', 'federated-sum/one-example');
    expect(renamed.code).toBe(1);
    expect(renamed.out).toMatch(
      /^FAIL federated-sum\/one-example: BUNDLE_TYPE_MISMATCH: .*0: missing; expected int32.*x: not part of type/m,
    );
    const accepted = await wrongRun('accept', 'temperature-sensor');
    expect(accepted.code).toBe(1);
    expect(accepted.out).toMatch(/^PASS temperature-sensor\/over \(upload matches\)$/m);
    expect(accepted.out).toMatch(
      /^FAIL temperature-sensor\/broadcast-nan: exited 0, but a client must refuse/m,
    );
    expect(accepted.out).toMatch(/^3 cases: 2 passed, 1 failed$/m);
  });

  test('a client past the timeout is ended and fails; --keep keeps what clients wrote', async () => {
    const keep = fs.mkdtempSync(path.join(os.tmpdir(), 'conformance-keep-'));
    try {
      const slow = await wrongRun('sleep', 'mean/one-value', '--timeout-ms', '300', '--json');
      expect(slow.code).toBe(1);
      expect(JSON.parse(slow.out.split('\n')[0]!)).toMatchObject({
        id: 'mean/one-value',
        status: 'fail',
        reason: 'timed out after 300 ms',
      });
      const kept = await wrongRun('flip', 'mean/one-value', '--keep', keep);
      expect(kept.code).toBe(1);
      expect(fs.existsSync(path.join(keep, 'mean', 'one-value', 'out.safetensors'))).toBe(true);
    } finally {
      fs.rmSync(keep, { recursive: true, force: true });
    }
  });

  test('usage mistakes exit 2: an unknown case prefix lists the plans and cases', async () => {
    const unknown = await conformance('--client-cmd', 'true', '--case', 'federated-sum,nosuch');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(
      /no case starts with 'nosuch'; the plans are federated-sum, histogram, mean, temperature-sensor, fedavg and the cases federated-sum\/partial-batch, /,
    );
    expect((await conformance('--case', 'mean')).code).toBe(2);
    expect((await conformance('--client-cmd', 'true', '--timeout-ms', 'soon')).code).toBe(2);
  });
});
