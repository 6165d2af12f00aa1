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
import { splitTable } from '../data/split';
import { readTextFile } from './read-file';
import { fraction, positiveInt } from './run-local';

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
  data
    .command('split')
    .description(
      'split a CSV of labelled examples (numeric feature columns and a label column) into clients (clients.csv), ' +
        'a stratified held-out set (heldout.csv, no client_id) and the scaling (scaling.json), for ' +
        '`plans build fedavg --layers <features>,...,<classes>`',
    )
    .argument('<csv>', 'the table: a header row, then one example per row')
    .requiredOption('--label <column>', 'the label column')
    .option(
      '--classes <k>',
      'classes (labels 0..k-1, or at most k distinct values); default: as found',
      positiveInt('--classes'),
    )
    .requiredOption('--clients <n>', 'number of clients', positiveInt('--clients'))
    .option('--holdout <f>', 'fraction of each class held out', fraction('--holdout'), 0.2)
    .option(
      '--non-iid <shards>',
      'label shards per client (mostly that many labels each); default IID',
      positiveInt('--non-iid'),
    )
    .option('--standardize', 'scale each feature to mean 0, sd 1 over the training examples', false)
    .option('--seed <n>', 'seed of the hold-out and the partition', (v) => Number(v), 1)
    .option('--out-dir <dir>', 'output directory', '.')
    .action(
      (
        file: string,
        opts: {
          label: string;
          classes?: number;
          clients: number;
          holdout: number;
          nonIid?: number;
          standardize: boolean;
          seed: number;
          outDir: string;
        },
      ) => {
        const split = splitTable(readTextFile(file, 'table'), file, opts);
        fs.mkdirSync(opts.outDir, { recursive: true });
        const out = (name: string) => path.join(opts.outDir, name);
        fs.writeFileSync(out('clients.csv'), split.clientsCsv);
        fs.writeFileSync(out('heldout.csv'), split.heldoutCsv);
        fs.writeFileSync(out('scaling.json'), `${JSON.stringify(split.scaling, null, 2)}\n`);
        const sizes = split.counts.perClient;
        process.stdout.write(
          `${split.counts.train} training examples in ${opts.clients} clients (${Math.min(...sizes)} to ${Math.max(...sizes)} each) -> ${out('clients.csv')}\n` +
            `${split.counts.heldout} held out -> ${out('heldout.csv')}; scaling -> ${out('scaling.json')}\n` +
            `${split.scaling.features.length} features, ${split.scaling.classes.length} classes: ` +
            `plans build fedavg --layers ${split.scaling.features.length},32,${split.scaling.classes.length}\n`,
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
