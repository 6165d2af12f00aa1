import { DEFAULT_LIMITS } from './compute/limits';
import { loadConfig } from './config';

// The cost budgets and schedule bounds are read from the environment once, with the documented defaults.
describe('cost and schedule limits in the configuration', () => {
  test('default to the documented values', () => {
    const { limits } = loadConfig({});
    expect(limits).toEqual(DEFAULT_LIMITS);
    expect(limits).toMatchObject({
      maxPeakBytes: 1 << 30,
      maxFlops: 1e9,
      maxClientPeakBytes: 1 << 30,
      maxClientFlops: 1e11,
      costClientBatches: 100,
      scheduleMinSeconds: 1,
      scheduleMaxSeconds: 604_800,
      scheduleMaxRounds: 100_000,
      scheduleMaxTargetClients: 100_000,
    });
  });

  test('follow the environment', () => {
    const { limits } = loadConfig({
      LIMIT_MAX_PEAK_BYTES: '2147483648',
      LIMIT_MAX_FLOPS: '5e9',
      LIMIT_MAX_CLIENT_PEAK_BYTES: '1000',
      LIMIT_MAX_CLIENT_FLOPS: '2e12',
      LIMIT_COST_CLIENT_BATCHES: '20',
      SCHEDULE_MIN_SECONDS: '0',
      SCHEDULE_MAX_SECONDS: '86400',
      SCHEDULE_MAX_ROUNDS: '10',
      SCHEDULE_MAX_TARGET_CLIENTS: '50',
    });
    expect(limits).toMatchObject({
      maxPeakBytes: 2 ** 31,
      maxFlops: 5e9,
      maxClientPeakBytes: 1000,
      maxClientFlops: 2e12,
      costClientBatches: 20,
      scheduleMinSeconds: 0,
      scheduleMaxSeconds: 86_400,
      scheduleMaxRounds: 10,
      scheduleMaxTargetClients: 50,
    });
  });

  test('refuse values that make no sense, naming the variable', () => {
    expect(() => loadConfig({ LIMIT_MAX_FLOPS: '0' })).toThrow(/LIMIT_MAX_FLOPS must be an integer >= 1/);
    expect(() => loadConfig({ LIMIT_MAX_PEAK_BYTES: 'lots' })).toThrow(/LIMIT_MAX_PEAK_BYTES/);
    expect(() => loadConfig({ SCHEDULE_MIN_SECONDS: '60', SCHEDULE_MAX_SECONDS: '30' })).toThrow(
      /SCHEDULE_MIN_SECONDS is more than SCHEDULE_MAX_SECONDS/,
    );
  });
});
