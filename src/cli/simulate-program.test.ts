/**
 * `roundhouse simulate --program` before anything runs: which program it names, the flags it refuses, and
 * programs the simulated digits devices cannot serve. Nothing here reaches a server (these all fail first).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sumProgram } from '../../test/support/stateful-programs';
import { digitsProgramDevices } from '../simulate/program-population';
import { buildTrainThenEvaluate } from '../stateful/library/train-then-evaluate';
import { EXIT } from './conventions';
import { program as cli } from './main';
import { runInProcess } from './run-in-process.jest';
import { programFor } from './simulate-program';

const run = (...args: string[]) => runInProcess(cli, ['simulate', ...args]);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-simulate-program-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, doc: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(doc));
  return file;
}

describe('simulate --program: the program', () => {
  it('a library name builds it with a cohort of the simulated devices and the step timeout given', () => {
    const p = programFor('train-then-evaluate', 7, 9);
    expect(p.name).toBe('train-then-evaluate');
    expect(p.cohort).toMatchObject({ target_clients: 7, min_clients: 4, step_timeout_s: 9 });
    expect(programFor('personalised', 2, undefined).cohort).toMatchObject({
      target_clients: 2,
      min_clients: 2,
      step_timeout_s: 120,
    });
  });

  it("a file is checked as the server checks it, and --step-timeout-s replaces its cohort's", () => {
    const file = write('tte.json', buildTrainThenEvaluate({ rounds: 1, targetClients: 5, minClients: 3 }));
    expect(programFor(file, 5, undefined).cohort.step_timeout_s).toBe(120);
    expect(programFor(file, 5, 4).cohort).toEqual({
      target_clients: 5,
      min_clients: 3,
      join_timeout_s: 120,
      step_timeout_s: 4,
    });
    const leaky = JSON.parse(fs.readFileSync(file, 'utf8')) as { outputs: Record<string, string> };
    leaky.outputs.leak = 'update_1';
    expect(() => programFor(write('leak.json', leaky), 5, undefined)).toThrow(
      /--program .*leak\.json is refused: PROGRAM_PRIVACY_VIOLATION: [^]*\/outputs\/leak/,
    );
  });

  it('a name that is neither a file nor a library program is a usage error listing the library', async () => {
    await expect(run('--program', 'nosuch', '--token', 't')).rejects.toThrow(
      /--program nosuch: no such file, nor a library program \(train-then-evaluate, personalised\)/,
    );
    await expect(run('--program', path.join(dir, 'nosuch.json'), '--token', 't')).rejects.toThrow(
      /cannot read --program .*nosuch\.json: no such file/,
    );
  });
});

describe('simulate --program: flags', () => {
  it.each([
    ['--plan', 'p1'],
    ['--submit', 'plan.json'],
    ['--data', 'clients.csv'],
    ['--slow', '0.1'],
    ['--rounds', '3'],
  ])('%s is refused with --program (exit 2)', async (flag, value) => {
    const { err, code } = await run('--program', 'train-then-evaluate', flag, value);
    expect(code).toBe(EXIT.usage);
    expect(err).toMatch(/option '--program <program>' cannot be used with option/);
  });

  it('--in-process and --step-timeout-s go with --program only; --in-process takes no server', async () => {
    await expect(run('--submit', 'plan.json', '--in-process')).rejects.toThrow(
      '--step-timeout-s and --in-process go with --program',
    );
    await expect(
      run('--program', 'train-then-evaluate', '--in-process', '--server', 'http://127.0.0.1:1'),
    ).rejects.toThrow('--in-process starts its own server: no --server or --token with it');
  });

  it('a cohort minimum above the devices fails before anything starts', async () => {
    const file = write('six.json', buildTrainThenEvaluate({ rounds: 1, targetClients: 6, minClients: 6 }));
    await expect(run('--program', file, '--clients', '4', '--token', 't')).rejects.toThrow(
      'program train-then-evaluate needs a cohort of at least 6 devices (cohort.min_clients), but the simulation has 4',
    );
  });
});

describe('the devices of a program', () => {
  it('each device holds its own train and test shares under the collections the program reads', () => {
    const program = buildTrainThenEvaluate({ rounds: 1, targetClients: 3, minClients: 2 });
    const devices = digitsProgramDevices(program, { clients: 3, seed: 5 });
    expect(devices).toHaveLength(3);
    let total = 0;
    for (const d of devices) {
      expect(Object.keys(d).sort()).toEqual(['digits', 'digits-test']);
      const [train, test] = [d.digits!, d['digits-test']!];
      // A fifth of each device's own examples is its test share.
      expect(test.count).toBe(Math.round((train.count + test.count) * 0.2));
      total += train.count + test.count;
    }
    // Every digit is some device's, once (the 1797 examples of data/digits.csv.gz).
    expect(total).toBe(1797);
    // The same options give the same devices.
    expect(digitsProgramDevices(program, { clients: 3, seed: 5 })[1]!.digits!.leaves[1]).toEqual(
      devices[1]!.digits!.leaves[1],
    );
  });

  it('a program whose collections are not digits is refused, naming the entry', () => {
    expect(() => digitsProgramDevices(sumProgram(2, 3), { clients: 3 })).toThrow(
      /program sum-then-scale: client_data\.readings wants client data of type float32\[\?\], but the simulated devices hold digits/,
    );
  });
});
