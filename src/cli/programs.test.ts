import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatType } from '../compute/types';
import { checkProgram } from '../stateful/check';
import { buildTrainThenEvaluate } from '../stateful/library/train-then-evaluate';
import { EXIT } from './conventions';
import { program as cli } from './main';
import { PROGRAM_LIBRARY, programsCommand } from './programs';
import { runInProcess } from './run-in-process.jest';

const run = (...args: string[]) => runInProcess(programsCommand, args);

describe('roundhouse programs list|build', () => {
  it('list names every library program with its description', async () => {
    const { out, code } = await run('list');
    expect(code).toBe(0);
    expect(Object.keys(PROGRAM_LIBRARY)).toEqual(['train-then-evaluate', 'personalised']);
    for (const [name, p] of Object.entries(PROGRAM_LIBRARY)) {
      expect(out).toMatch(new RegExp(`^${name} +${p.description.replace(/[()+.|-]/g, '\\$&')}$`, 'm'));
    }
  });

  it('list --json gives each program its options with their defaults', async () => {
    const { out, code } = await run('list', '--json');
    expect(code).toBe(0);
    const listed = JSON.parse(out) as {
      name: string;
      options: { flag: string; default: string }[];
    }[];
    expect(listed.map((p) => p.name)).toEqual(['train-then-evaluate', 'personalised']);
    const flags = Object.fromEntries(listed[0]!.options.map((o) => [o.flag, o.default]));
    expect(flags).toMatchObject({
      '--rounds': '5',
      '--layers': '64,32,10',
      '--test-collection': 'digits-test',
      '--target-clients': '20',
      '--min-clients': '10',
      '--step-timeout-s': '120',
    });
  });

  it('build prints a program that checkProgram accepts, with the options applied', async () => {
    const { out, code } = await run(
      'build',
      'train-then-evaluate',
      '--layers',
      '64,8,10',
      '--rounds',
      '2',
      '--target-clients',
      '6',
      '--min-clients',
      '3',
      '--step-timeout-s',
      '5',
      '--compact',
    );
    expect(code).toBe(0);
    expect(out.trim().split('\n')).toHaveLength(1);
    const { program, types } = checkProgram(JSON.parse(out));
    expect(program.cohort).toMatchObject({ target_clients: 6, min_clients: 3, step_timeout_s: 5 });
    expect(program.client_data.train!.collection).toBe('digits');
    expect(program.client_data.test!.collection).toBe('digits-test');
    expect(formatType(types.get('model_2')!)).toBe(
      '<model=<w0=float32[64,8],b0=float32[8],w1=float32[8,10],b1=float32[10]>>',
    );
    // Two rounds unrolled: two training aggregations, then the evaluation's.
    expect(program.steps.filter((s) => s.op === 'aggregate').map((s) => s.result)).toEqual([
      'report_1',
      'report_2',
      'metrics',
    ]);
    // The same program the library's builder makes from the same options.
    expect(program).toEqual(
      buildTrainThenEvaluate({
        layers: [64, 8, 10],
        rounds: 2,
        targetClients: 6,
        minClients: 3,
        stepTimeoutS: 5,
      }),
    );
  });

  it('build personalised -o writes the program to a file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-programs-'));
    try {
      const file = path.join(dir, 'personalised.json');
      const { out, code } = await run('build', 'personalised', '--rounds', '3', '-o', file);
      expect({ out, code }).toEqual({ out: '', code: 0 });
      const { program } = checkProgram(JSON.parse(fs.readFileSync(file, 'utf8')));
      expect(program.name).toBe('personalised');
      expect(Object.keys(program.outputs).sort()).toEqual(['global', 'model', 'personalised', 'train']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--help lists a program options with their defaults', async () => {
    const { out, code } = await run('build', 'train-then-evaluate', '--help');
    expect(code).toBe(0);
    const help = out.replace(/\s+/g, ' ');
    expect(help).toMatch(/--rounds <n> training rounds before the evaluation \(default: 5\)/);
    expect(help).toMatch(
      /--test-collection <name> the evaluation collection of each device \(default: digits-test\)/,
    );
    expect(help).toMatch(
      /--step-timeout-s <n> seconds a device may take to answer a batch of requests \(default: 120\)/,
    );
  });

  it.each([
    [['build', 'train-then-evaluate', '--rounds', 'two'], /option --rounds: "two" is not an integer/],
    [['build', 'train-then-evaluate', '--layers', '64'], /option --layers: expected at least 2 entries/],
    [['build', 'personalised', '--min-clients', '1'], /option --min-clients: 1 is less than 2/],
    [['build', 'personalised', '--frobnicate', '1'], /unknown option '--frobnicate'/],
    [
      ['build', 'train-then-evaluate', '--target-clients', '4', '--min-clients', '6'],
      /cannot build train-then-evaluate: [^]*\/cohort\/target_clients: target_clients 4 is less than min_clients 6/,
    ],
  ])('%j is a usage error (exit 2) naming what is wrong', async (args, message) => {
    const { out, err, code } = await run(...args);
    expect(code).toBe(EXIT.usage);
    expect(out).toBe('');
    expect(err).toMatch(message);
  });

  it('an unknown program lists the programs', async () => {
    const { out, err, code } = await runInProcess(cli, ['programs', 'build', 'nosuch']);
    expect(code).toBe(EXIT.usage);
    expect(out).toBe('');
    expect(err).toContain("unknown program 'nosuch'; the programs are: train-then-evaluate, personalised");
  });
});
