import { formatSummary } from './report';
import type { RoundSummary } from './simulator';

const base: RoundSummary = {
  round: 3,
  attempt: 1,
  rounds: 50,
  status: 'completed',
  participants: 20,
  assigned: 26,
  reported: 20,
  rejected: 0,
  dropped: 2,
  late: 4,
  abandoned: 0,
  errors: 0,
  output: { train_loss: 0.5, clients: 20 },
  accuracy: 0.8,
  evaluation: { accuracy: 0.8 },
  seconds: 7.25,
};

describe('formatSummary', () => {
  it('shows a round with SecAgg: its protocol and the counts of each step, before the output', () => {
    const line = formatSummary({
      ...base,
      secureAggregation: { protocol: 'secagg+', advertised: 26, shared: 25, unmasked: 19 },
    });
    expect(line).toBe(
      'round  3/50  participants=20  assigned=26  dropped=2  late=4  secagg+ cohort=26 shared=25 unmasked=19  ' +
        'train_loss=0.5000  clients=20  eval.accuracy=0.8000  (7.3s)',
    );
  });

  it('says nothing of SecAgg for a round without it', () => {
    expect(formatSummary(base)).toBe(
      'round  3/50  participants=20  assigned=26  dropped=2  late=4  train_loss=0.5000  clients=20  ' +
        'eval.accuracy=0.8000  (7.3s)',
    );
  });

  it('shows the counts of a failed SecAgg round beside its error', () => {
    const line = formatSummary({
      ...base,
      status: 'failed',
      error: 'secure aggregation: 3 shares of client 4, below the threshold 5',
      secureAggregation: { protocol: 'secagg', advertised: 8, shared: 8, unmasked: 3 },
    });
    expect(line).toContain('secagg cohort=8 shared=8 unmasked=3  FAILED: secure aggregation: 3 shares');
  });
});
