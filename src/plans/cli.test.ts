import { plansCommand } from '../cli/plans';
import { formatType } from '../compute/types';
import { checkPlan } from '../plan/validate';
import { PLAN_LIBRARY } from '.';
import { runInProcess } from '../cli/run-in-process.jest';

const run = (...args: string[]) => runInProcess(plansCommand, args);

describe('roundhouse plans', () => {
  it('list names every library plan with its description', async () => {
    const { out, code } = await run('list');
    expect(code).toBe(0);
    for (const [name, p] of Object.entries(PLAN_LIBRARY)) {
      expect(out).toMatch(new RegExp(`^${name} +${p.description.replace(/[()+.]/g, '\\$&')}$`, 'm'));
    }
  });

  it('build prints plan JSON that passes checkPlan, with options applied', async () => {
    const { out, code } = await run(
      'build',
      'fedavg',
      '--layers',
      '64,16,10',
      '--optimizer',
      'adam',
      '--rounds',
      '3',
      '--compact',
    );
    expect(code).toBe(0);
    expect(out.trim().split('\n')).toHaveLength(1);
    const plan = JSON.parse(out);
    expect(plan.schedule.rounds).toBe(3);
    expect(plan.client_data.element.fields[0].type.shape).toEqual([null, 64]);
    expect(formatType(checkPlan(plan).types.S)).toContain('optimizer=<m=<w0=float32[64,16]');
  });

  it('a boolean option works as a bare flag', async () => {
    const { out } = await run('build', 'federated-sum', '--secure', '--bitwidth', '8');
    const plan = JSON.parse(out);
    expect(plan.name).toBe('federated-secure-sum');
    expect(plan.computations.secure_sum_bitwidth.nodes[0].attrs.value).toBe(8);
  });

  it('fedavg --secure sends the fixed-point model change through secure_sum_bitwidth', async () => {
    const { out, code } = await run(
      'build',
      'fedavg',
      '--secure',
      '--layers',
      '4,2',
      '--clip-range',
      '0.5',
      '--bitwidth',
      '12',
    );
    expect(code).toBe(0);
    const plan = JSON.parse(out);
    expect(plan.name).toBe('fedavg-secure');
    expect(plan.update_bounds).toBeUndefined();
    expect(plan.description).toMatch(/clipped to ±0\.5, 12-bit fixed point/);
    const { types } = checkPlan(plan);
    expect(formatType(types.U)).toBe('<>');
    // One bitwidth per tensor of V1: 12 for the model change and the loss, 1 for the client count.
    const params = plan.computations.secure_sum_bitwidth.nodes
      .filter((n: { op: string }) => n.op === 'const')
      .map((n: { attrs: { value: number } }) => n.attrs.value);
    expect(params.sort()).toEqual([1, 12]);
    // Without --secure the same options build the plain plan, whose bounds stay.
    const plain = JSON.parse((await run('build', 'fedavg', '--layers', '4,2')).out);
    expect(plain.name).toBe('fedavg');
    expect(plain.update_bounds.norms).toHaveLength(1);
  });

  it("fedavg --dp takes every dp flag into the plan's dp section", async () => {
    const { out, code } = await run(
      'build',
      'fedavg',
      '--dp',
      '--layers',
      '4,2',
      '--clip',
      '0.5',
      '--noise-multiplier',
      '1.1',
      '--adaptive-clip',
      '--target-quantile',
      '0.6',
      '--clip-learning-rate',
      '0.1',
      '--clipped-count-stddev',
      '2',
      '--target-epsilon',
      '20',
      '--target-delta',
      '1e-6',
      '--accounting',
      'subsampled',
      '--population-size',
      '5000',
    );
    expect(code).toBe(0);
    const plan = JSON.parse(out);
    expect(plan.name).toBe('fedavg-dp');
    expect(plan.update_bounds).toBeUndefined();
    expect(plan.dp).toEqual({
      record: 'delta',
      clip: {
        adaptive: { initial_norm: 0.5, target_quantile: 0.6, learning_rate: 0.1, clipped_count_stddev: 2 },
      },
      indicator: 'clipped',
      clients_count: 'clients',
      clip_broadcast: 'clip',
      noise_multiplier: 1.1,
      clients_per_round: 20,
      target: { epsilon: 20, delta: 1e-6 },
      accounting: 'subsampled',
      population_size: 5000,
    });
    expect(formatType(checkPlan(plan).types.U)).toBe(
      '<delta=<w0=float32[4,2],b0=float32[2]>,clipped=float32>',
    );
  });

  it('build declares update bounds from the bound options', async () => {
    const fedavg = JSON.parse(
      (await run('build', 'fedavg', '--max-examples', '50', '--max-norm', '2', '--bound-mode', 'reject')).out,
    );
    expect(fedavg.update_bounds).toEqual({
      ranges: [
        { path: 'examples', min: 0, max: 50, mode: 'clip' },
        { path: 'loss_sum', min: 0, max: 500000, mode: 'clip' },
      ],
      norms: [{ paths: ['delta'], max_norm: 100, mode: 'reject' }],
    });
    const uniform = JSON.parse(
      (await run('build', 'fedavg', '--weighting', 'uniform', '--max-norm', '2')).out,
    );
    expect(uniform.update_bounds.norms).toEqual([{ paths: ['delta'], max_norm: 2, mode: 'clip' }]);
    const sum = JSON.parse(
      (await run('build', 'federated-sum', '--max-value', '100', '--min-value', '0')).out,
    );
    expect(sum.update_bounds).toEqual({ ranges: [{ path: '', min: 0, max: 100, mode: 'clip' }] });
    // By default a whole round (10 clients, 13 selected) cannot overflow int32.
    const bySchedule = JSON.parse((await run('build', 'federated-sum')).out);
    expect(bySchedule.update_bounds.ranges[0]).toMatchObject({ min: -165191049, max: 165191049 });
    const histogram = JSON.parse(
      (await run('build', 'histogram', '--max-input', '7', '--bound-mode', 'reject')).out,
    );
    expect(histogram.update_bounds).toEqual({ ranges: [{ path: 'counts', min: 0, max: 7, mode: 'reject' }] });
    for (const plan of [fedavg, uniform, sum, bySchedule, histogram])
      expect(() => checkPlan(plan)).not.toThrow();
    // The secure variants have no plain update to bound.
    expect(JSON.parse((await run('build', 'histogram', '--secure')).out).update_bounds).toBeUndefined();
  });

  it('--help lists a plan options with their defaults', async () => {
    const { out, code } = await run('build', 'fedavg', '--help');
    expect(code).toBe(0);
    // commander wraps long descriptions, so collapse whitespace first.
    const help = out.replace(/\s+/g, ' ');
    expect(help).toMatch(
      /--layers <list> layer widths: inputs, hidden\.\.\., classes \(relu hidden layers\) \(default: 64,32,10\)/,
    );
    expect(help).toMatch(/--client-lr <x> client SGD learning rate \(default: 0\.3\)/);
    expect(help).toMatch(/--weighting <name> .* \(default: examples; uniform with --secure or --dp\)/);
    expect(help).toMatch(/--clip <x> --dp: L2 clip norm .* \(default: required with --dp\)/);
    expect(help).toMatch(/--target-delta <x> --dp: .* \(default: 1e-5\)/);
    expect(help).toMatch(
      /--accounting <name> --dp: .* \(no-amplification \| subsampled\) \(default: no-amplification\)/,
    );
    expect(help).toMatch(/--clip-range <x> --secure: .* \(default: 1\)/);
    expect(help).toMatch(/--bitwidth <n> --secure: .* \(default: 16\)/);
    expect(help).toMatch(
      /--min-reports <n> reports needed by the deadline for a round to count \(default: target clients\)/,
    );
  });

  it('build without a plan name shows the plans there are', async () => {
    const { out, err, code } = await run('build');
    expect(out + err).toMatch(/Commands:[\s\S]*fedavg[\s\S]*temperature-sensor/);
    expect(code).toBe(2);
  });

  it.each([
    [['build', 'fedavg', '--epochs', 'many'], /option --epochs: "many" is not an integer/],
    [['build', 'fedavg', '--layers', '64'], /option --layers: expected at least 2 entries/],
    [['build', 'fedavg', '--optimizer', 'rmsprop'], /"rmsprop" is not one of sgd, adam/],
    [['build', 'histogram', '--secure', 'maybe'], /option --secure: "maybe" is not true or false/],
    [
      ['build', 'mean', '--target-clients', '5', '--min-reports', '9'],
      /min_reports \(9\) is more than target_clients \(5\)/,
    ],
    [['build', 'mean', '--frobnicate', '1'], /unknown option/],
    [['build', 'fedavg', '--bound-mode', 'wrap'], /"wrap" is not one of clip, reject/],
    [['build', 'fedavg', '--weighting', 'votes'], /"votes" is not one of examples, uniform/],
    [['build', 'fedavg', '--max-examples', '0'], /option --max-examples: 0 is less than 1/],
    [
      ['build', 'federated-sum', '--min-value', '5', '--max-value', '1'],
      /--min-value: 5 is more than --max-value 1/,
    ],
    [
      ['build', 'fedavg', '--secure', '--weighting', 'examples'],
      /cannot build fedavg: option --weighting: examples does not work with --secure/,
    ],
    [
      ['build', 'fedavg', '--secure', '--bitwidth', '24', '--target-clients', '200'],
      /option --bitwidth: 260 clients a round \(--target-clients 200 x --over-selection 1\.3\) of up to 2\^24-1 each can sum to 4362075900, beyond int32 \(2\^31-1\); use --bitwidth 22 or less/,
    ],
    [['build', 'fedavg', '--bitwidth', '1'], /option --bitwidth: 1 is less than 2/],
    [['build', 'fedavg', '--bitwidth', '25'], /option --bitwidth: 25 is more than 24/],
    [['build', 'fedavg', '--clip-range', '0'], /option --clip-range: 0 must be more than 0/],
    [
      ['build', 'fedavg', '--dp', '--clip', '1', '--noise-multiplier', '1'],
      /cannot build fedavg: option --target-epsilon: --dp needs the privacy budget/,
    ],
    [
      [
        'build',
        'fedavg',
        '--dp',
        '--secure',
        '--adaptive-clip',
        '--clip',
        '1',
        '--noise-multiplier',
        '1',
        '--target-epsilon',
        '5',
      ],
      /cannot build fedavg: option --adaptive-clip: does not work with --secure/,
    ],
    [['build', 'fedavg', '--clip', '1'], /cannot build fedavg: option --clip: only with --dp/],
    [['build', 'fedavg', '--dp', '--noise-multiplier', '-1'], /option --noise-multiplier: -1 is less than 0/],
    [
      ['build', 'fedavg', '--dp', '--accounting', 'poisson'],
      /"poisson" is not one of no-amplification, subsampled/,
    ],
    [
      ['build', 'no-such-plan'],
      /unknown plan 'no-such-plan'; the plans are: fedavg, temperature-sensor, federated-sum, histogram, mean/,
    ],
  ])('%j is a usage error with exit code 2', async (args, message) => {
    const { err, code } = await run(...(args as string[]));
    expect(code).toBe(2);
    expect(err).toMatch(message);
  });
});
