import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// The acceptance run of the plan format: a FedAvg plan built with the CLI, 100 non-IID digits clients
// (two label shards each, 20% of the data held out), 20 clients a round, run by the local runner for 50
// rounds through the CLI. Uses the compiled CLI (`npm test` builds first).
const cli = path.join(__dirname, '..', 'bin', 'roundhouse.js');
const run = (args: string[]) =>
  execFileSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

describe('FedAvg on the digits data through the CLI', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roundhouse-fedavg-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('reaches at least 0.90 held-out accuracy within 50 rounds', () => {
    fs.writeFileSync(
      path.join(dir, 'plan.json'),
      run(['plans', 'build', 'fedavg', '--rounds', '50', '--target-clients', '20']),
    );
    run([
      'data',
      'digits',
      '--clients',
      '100',
      '--shards-per-client',
      '2',
      '--test-fraction',
      '0.2',
      '--out-dir',
      dir,
    ]);
    const out = run([
      'run-local',
      path.join(dir, 'plan.json'),
      '--data',
      path.join(dir, 'clients.csv'),
      '--eval-data',
      path.join(dir, 'heldout.csv'),
      '--json',
    ]);
    const rounds = out
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            round: number;
            participants: number;
            evaluation: { accuracy: number; examples: number };
          },
      );
    expect(rounds).toHaveLength(50);
    expect(rounds.every((r) => r.participants === 20)).toBe(true);
    expect(rounds[0]!.evaluation.examples).toBe(359);
    const best = Math.max(...rounds.map((r) => r.evaluation.accuracy));
    const last = rounds[49]!.evaluation.accuracy;
    // Both figures are asserted: the model got there, and it is still there at the end.
    expect(best).toBeGreaterThanOrEqual(0.9);
    expect(last).toBeGreaterThanOrEqual(0.9);
    // Before training the model is near chance, so the figure is earned by the rounds.
    expect(rounds[0]!.evaluation.accuracy).toBeLessThan(0.9);
  });
});
