import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeClientsCsv } from '../data';
import {
  digitsClientExamples,
  digitsElementType,
  loadDigits,
  partitionNonIid,
  trainTestSplit,
} from '../data/digits';
import { positiveInt } from './run-local';

/** `roundhouse data digits`: writes the digits data as non-IID client CSVs plus a held-out CSV. */
export function dataCommand(): Command {
  const data = new Command('data').description('prepare example client data sets');
  data
    .command('digits')
    .description('split the UCI digits into non-IID clients (clients.csv) and a held-out set (heldout.csv)')
    .option('--clients <n>', 'number of clients', positiveInt('--clients'), 100)
    .option(
      '--shards-per-client <n>',
      'label shards per client (2 = mostly two labels each)',
      positiveInt('--shards-per-client'),
      2,
    )
    .option('--test-fraction <f>', 'held-out fraction', (v) => Number(v), 0.2)
    .option('--seed <n>', 'seed of the split and partition', (v) => Number(v), 1)
    .option('--out-dir <dir>', 'output directory', '.')
    .action(
      (opts: {
        clients: number;
        shardsPerClient: number;
        testFraction: number;
        seed: number;
        outDir: string;
      }) => {
        const { clientsCsv, heldoutCsv } = digitsCsvs(opts);
        fs.mkdirSync(opts.outDir, { recursive: true });
        fs.writeFileSync(path.join(opts.outDir, 'clients.csv'), clientsCsv);
        fs.writeFileSync(path.join(opts.outDir, 'heldout.csv'), heldoutCsv);
        process.stderr.write(
          `wrote ${opts.clients} clients to ${path.join(opts.outDir, 'clients.csv')} and the held-out set to ${path.join(opts.outDir, 'heldout.csv')}\n`,
        );
      },
    );
  return data;
}

/** The digits split into client and held-out CSVs (in the format `run-local --data` reads). */
export function digitsCsvs(opts: {
  clients: number;
  shardsPerClient: number;
  testFraction: number;
  seed: number;
}): {
  clientsCsv: string;
  heldoutCsv: string;
} {
  const all = loadDigits();
  const { train, test } = trainTestSplit(all, opts.testFraction, opts.seed);
  const parts = partitionNonIid(train.y, opts.clients, opts.shardsPerClient, opts.seed);
  const element = digitsElementType();
  const clients = new Map(
    parts.map((idx, i) => [`client-${String(i).padStart(3, '0')}`, digitsClientExamples(train, idx)]),
  );
  const heldout = new Map([
    [
      'heldout',
      digitsClientExamples(
        test,
        Array.from({ length: test.n }, (_, i) => i),
      ),
    ],
  ]);
  return { clientsCsv: writeClientsCsv(clients, element), heldoutCsv: writeClientsCsv(heldout, element) };
}
