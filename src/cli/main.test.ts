import { CommanderError } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PlanSummary } from '../store/types';
import { EXIT, exitCodeOf } from './conventions';
import { program } from './main';
import { formatTransition } from './plan-control';
import { runInProcess } from './run-in-process.jest';

const run = (...args: string[]) => runInProcess(program, args);

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  version: string;
};

describe('roundhouse (in-process)', () => {
  it.each([['--version'], ['-V']])('%s prints the package version and exits 0', async (flag) => {
    const { out, err, code } = await run(flag);
    expect({ out, err, code }).toEqual({ out: `${pkg.version}\n`, err: '', code: 0 });
  });

  it('an unknown command is a usage error that lists the commands', async () => {
    const { err, code } = await run('frobnicate');
    expect(code).toBe(EXIT.usage);
    expect(err).toMatch(/^error: unknown command 'frobnicate'; the commands are: start, worker, submit, /);
    const listed = err
      .slice(err.indexOf('are: ') + 5)
      .trim()
      .split(', ');
    expect(listed).toEqual(
      expect.arrayContaining(['pause', 'resume', 'cancel', 'delete', 'plans', 'run-local']),
    );
  });

  it('an unknown subcommand lists the subcommands of its parent', async () => {
    const { err, code } = await run('data', 'nosuch');
    expect(code).toBe(EXIT.usage);
    expect(err).toContain("unknown command 'nosuch'; the commands are: digits, split");
  });

  it('plans build with an unknown plan lists the plans', async () => {
    const { out, err, code } = await run('plans', 'build', 'nosuch', '--rounds', '3');
    expect(code).toBe(EXIT.usage);
    expect(out).toBe('');
    expect(err).toContain(
      "unknown plan 'nosuch'; the plans are: fedavg, temperature-sensor, federated-sum, histogram, mean",
    );
  });

  it.each([
    [['pause'], /missing required argument 'plan-id'/],
    [['resume', 'p1', 'p2'], /too many arguments/],
    [['cancel', 'p1', '--bogus'], /unknown option '--bogus'/],
    [['status', '--server'], /option '--server <url>' argument missing/],
    [['run-local', 'plan.json'], /required option '--data <csv>' not specified/],
    [['run-local', 'plan.json', '--data', 'x.csv', '--rounds', '0'], /--rounds must be a positive integer/],
    [[], /Usage: roundhouse/],
  ])('%j is a usage error with exit code 2', async (args, message) => {
    const { out, err, code } = await run(...args);
    expect(code).toBe(EXIT.usage);
    expect(out).toBe('');
    expect(err).toMatch(message);
  });

  it('--help goes to stdout with exit code 0', async () => {
    const { out, code } = await run('cancel', '--help');
    expect(code).toBe(EXIT.ok);
    expect(out).toMatch(/^Usage: roundhouse cancel \[options\] <plan-id>/);
    expect(out).toContain('--server <url>');
    expect(out).toContain('--token <token>');
  });

  it('a failing action rejects (main turns it into exit 1), with no usage exit', async () => {
    // No token anywhere: the operator commands fail before any request.
    const saved = process.env.OPERATOR_TOKEN;
    delete process.env.OPERATOR_TOKEN;
    try {
      await expect(run('pause', 'p0123456789ab', '--server', 'http://127.0.0.1:1')).rejects.toThrow(
        /no operator token/,
      );
    } finally {
      if (saved !== undefined) process.env.OPERATOR_TOKEN = saved;
    }
  });
});

describe('exitCodeOf', () => {
  it.each([
    ['commander.unknownOption', 1, EXIT.usage],
    ['commander.unknownCommand', 1, EXIT.usage],
    ['commander.missingArgument', 1, EXIT.usage],
    ['commander.excessArguments', 1, EXIT.usage],
    ['commander.invalidArgument', 1, EXIT.usage],
    ['commander.help', 1, EXIT.usage],
    ['commander.help', 0, EXIT.ok],
    ['commander.helpDisplayed', 0, EXIT.ok],
    ['commander.version', 0, EXIT.ok],
    ['commander.error', 1, EXIT.failure],
  ])('%s (commander exit %d) exits %d', (code, commanderExit, expected) => {
    expect(exitCodeOf(new CommanderError(commanderExit, code, 'x'))).toBe(expected);
  });
});

test('formatTransition says what happened, the status now and the round', () => {
  const plan = { id: 'p0123456789ab', name: 'sum', status: 'paused', round: 2, rounds: 3 } as PlanSummary;
  expect(formatTransition('pause', plan)).toBe('paused plan p0123456789ab (sum): status paused, round 2/3\n');
  expect(formatTransition('cancel', { ...plan, status: 'cancelled' })).toBe(
    'cancelled plan p0123456789ab (sum): status cancelled, round 2/3\n',
  );
});
