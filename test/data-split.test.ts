/**
 * An author's own data, by the README alone: the README's shell block (a CSV of labelled examples ->
 * `roundhouse data split` -> `plans build fedavg` with the widths it printed -> `validate` -> `run-local` with
 * the held-out set and `--save-state`) is read from README.md and run line by line through the real command
 * line (the built `bin/roundhouse.js`). The data is made here: three classes of 4-feature Gaussian blobs with
 * string labels and features on very different scales (which is what `--standardize` is for).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import seedrandom from 'seedrandom';
import { readBundle } from '../src/codec';

const BIN = path.join(__dirname, '..', 'bin', 'roundhouse.js');
const roundhouse = (...args: string[]) =>
  execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-split-'));
  const rng = seedrandom('blobs');
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const centres: Record<string, number[]> = { alder: [0, 0, 0, 0], birch: [3, 0, 3, 0], cedar: [0, 3, 0, 3] };
  const scale = [1, 100, 0.01, 10];
  const lines = ['f1,f2,species,f3,f4'];
  for (let i = 0; i < 150; i++) {
    for (const [species, c] of Object.entries(centres)) {
      const f = c.map((m, j) => ((m + normal()) * scale[j]!).toPrecision(6));
      lines.push([f[0], f[1], species, f[2], f[3]].join(','));
    }
  }
  fs.writeFileSync(path.join(dir, 'trees.csv'), lines.join('\n') + '\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The README's shell block that follows `marker`: its commands, and the output lines it shows after `#`. */
function readmeBlock(marker: string): { commands: string[]; shown: string[] } {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const from = readme.indexOf(marker);
  expect(from).toBeGreaterThanOrEqual(0);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(from))![1]!.trim().split('\n');
  return {
    commands: block.filter((l) => !l.startsWith('#')),
    shown: block.filter((l) => l.startsWith('#')).map((l) => l.replace(/^#\s*/, '')),
  };
}

/** Runs one README command line in `cwd`: `node bin/roundhouse.js <args> [> file]`, split on spaces. */
function runReadmeLine(line: string, cwd: string): string {
  const [command, redirect] = line.split(' > ');
  const words = command!.trim().split(/\s+/);
  expect(words.slice(0, 2)).toEqual(['node', 'bin/roundhouse.js']);
  const out = execFileSync(process.execPath, [BIN, ...words.slice(2)], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (redirect !== undefined) fs.writeFileSync(path.join(cwd, redirect.trim()), out);
  return out;
}

describe('roundhouse data split', () => {
  it("runs the README's own-data story as written: split, build, validate, run-local to 90%, the model saved", () => {
    const { commands, shown } = readmeBlock('Your own data:');
    expect(commands.map((c) => c.split(/\s+/)[2])).toEqual(['data', 'plans', 'validate', 'run-local']);
    const outputs = commands.map((c) => runReadmeLine(c, dir));

    // What the README shows `data split` printing is what it prints.
    const said = outputs[0]!;
    expect(shown.length).toBeGreaterThan(0);
    for (const line of shown) expect(said).toContain(line);
    expect(outputs[2]).toContain('fedavg');

    const out = path.join(dir, 'data', 'trees');
    const clients = fs.readFileSync(path.join(out, 'clients.csv'), 'utf8').trim().split('\n');
    expect(clients[0]).toBe('client_id,x.0,x.1,x.2,x.3,y');
    expect(clients).toHaveLength(361);
    const heldout = fs.readFileSync(path.join(out, 'heldout.csv'), 'utf8').trim().split('\n');
    expect(heldout[0]).toBe('x.0,x.1,x.2,x.3,y');
    // Stratified: 30 of each class's 150 held out.
    const perClass = [0, 1, 2].map((k) => heldout.slice(1).filter((l) => l.endsWith(`,${k}`)).length);
    expect(perClass).toEqual([30, 30, 30]);
    const scaling = JSON.parse(fs.readFileSync(path.join(out, 'scaling.json'), 'utf8')) as {
      classes: string[];
      features: string[];
      mean: number[];
      std: number[];
    };
    expect(scaling.classes).toEqual(['alder', 'birch', 'cedar']);
    expect(scaling.features).toEqual(['f1', 'f2', 'f3', 'f4']);
    // The second feature was drawn at 100 times the first's scale.
    expect(scaling.std[1]! / scaling.std[0]!).toBeGreaterThan(50);

    // run-local's human output: one line per round, the last with the held-out accuracy.
    const rounds = outputs[3]!.trim().split('\n');
    expect(rounds).toHaveLength(15);
    expect(rounds.at(-1)).toMatch(/^round 15\/15 /);
    const accuracy = Number(/eval\.accuracy=([0-9.]+)/.exec(rounds.at(-1)!)![1]);
    expect(accuracy).toBeGreaterThan(0.9);
    // The trained model, as the server's GET .../state would answer it: a 4-32-3 MLP's weights among it.
    const state = readBundle(fs.readFileSync(path.join(out, 'model.safetensors')));
    const shapes = state.tensors.map((t) => t.shape.join('x'));
    expect(shapes).toEqual(expect.arrayContaining(['4x32', '32', '32x3', '3']));
  });

  it('prints per-round timing with --json', () => {
    const plan = path.join(dir, 'trees.json');
    const rounds = roundhouse(
      'run-local',
      plan,
      '--rounds',
      '2',
      '--data',
      path.join(dir, 'data', 'trees', 'clients.csv'),
      '--json',
    )
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { round: number; ms: number });
    expect(rounds.map((r) => r.round)).toEqual([1, 2]);
    for (const r of rounds) expect(r.ms).toBeGreaterThanOrEqual(0);
  });

  it('names the file, the row and the column of a bad cell, and the columns when the label is missing', () => {
    const bad = path.join(dir, 'bad.csv');
    fs.writeFileSync(bad, 'a,b,label\n1,2,x\n3,oops,y\n');
    const r = spawnSync(process.execPath, [BIN, 'data', 'split', bad, '--label', 'label', '--clients', '1'], {
      encoding: 'utf8',
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`${bad}: row 3, column b`);
    expect(r.stderr).toContain('"oops" is not a finite number');
    const r2 = spawnSync(process.execPath, [BIN, 'data', 'split', bad, '--label', 'kind', '--clients', '1'], {
      encoding: 'utf8',
    });
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toContain('no column "kind"; the columns are a, b, label');
  });

  it('says which option to change when the plan selects more clients than the data has', () => {
    const out = path.join(dir, 'few');
    roundhouse(
      'data',
      'split',
      path.join(dir, 'trees.csv'),
      '--label',
      'species',
      '--clients',
      '10',
      '--out-dir',
      out,
    );
    // The library's default target of 20 clients a round.
    fs.writeFileSync(
      path.join(dir, 'default.json'),
      roundhouse('plans', 'build', 'fedavg', '--layers', '4,16,3'),
    );
    const r = spawnSync(
      process.execPath,
      [BIN, 'run-local', path.join(dir, 'default.json'), '--data', path.join(out, 'clients.csv')],
      { encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(
      "the data has 10 clients, fewer than the plan's min_reports (20): build the plan with --target-clients 10",
    );
  });
});
