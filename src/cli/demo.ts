import { Command } from 'commander';
import { initBackend } from '../compute/backend';
import { digitsClientExamples, loadDigits, partitionNonIid, trainTestSplit } from '../data/digits';
import { createLogger } from '../log/logger';
import { PLAN_LIBRARY } from '../plans';
import { LocalRunner } from '../runner/local-runner';
import { formatRound, positiveInt } from './run-local';

/**
 * `roundhouse demo`: FedAvg on the digits data, 100 non-IID clients (two label shards each), 20 a round,
 * run by the local runner from the library's fedavg plan, printing held-out accuracy each round.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'train the FedAvg digits plan over 100 non-IID clients in this process and print held-out accuracy',
    )
    .option('--rounds <n>', 'rounds', positiveInt('--rounds'), 50)
    .option('--seed <n>', 'seed of the data split and client sampling', (v) => Number(v), 1)
    .action(async (opts: { rounds: number; seed: number }) => {
      const log = createLogger();
      log.info({ backend: await initBackend() }, 'TensorFlow.js backend ready');
      const { train, test } = trainTestSplit(loadDigits(), 0.2, opts.seed);
      const parts = partitionNonIid(train.y, 100, 2, opts.seed);
      const clients = new Map(parts.map((idx, i) => [`client-${i}`, digitsClientExamples(train, idx)]));
      const heldout = digitsClientExamples(
        test,
        Array.from({ length: test.n }, (_, i) => i),
      );
      const plan = PLAN_LIBRARY.fedavg!.build({ rounds: opts.rounds });
      const runner = new LocalRunner(plan, clients, { seed: opts.seed, evaluationData: heldout });
      log.info(
        { plan: plan.name, clients: clients.size, heldout: test.n, rounds: opts.rounds },
        'running FedAvg locally',
      );
      try {
        let t = Date.now();
        for (const r of runner.rounds()) {
          const now = Date.now();
          process.stdout.write(`${formatRound(r, opts.rounds, now - t)}\n`);
          t = now;
        }
      } finally {
        runner.dispose();
      }
    });
}
