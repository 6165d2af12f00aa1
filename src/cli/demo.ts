import { Command } from 'commander';
import { initBackend } from '../compute/backend';
import { digitsClientExamples, loadDigits, partitionNonIid, trainTestSplit } from '../data/digits';
import { createLogger, type Logger } from '../log/logger';
import type { Plan } from '../generated/plan';
import { PLAN_LIBRARY } from '../plans';
import { LocalRunner } from '../runner/local-runner';
import { abortOnSignals, signalExitCode } from '../runtime/shutdown';
import type { InProcessServer } from '../simulate/in-process-server';
import { loadServerConfig } from './cli-config';
import { onClosedStdout } from './closed-pipe';
import { digitsSource } from '../simulate/digits-population';
import { formatRound, positiveInt } from './run-local';
import { fraction, positiveNumber, runAndReport } from './simulate';

/**
 * Demo pacing. The plan keeps the library's training defaults (MLP 64-32-10, 20 clients a round, 5 epochs,
 * batch 8, lr 0.3) but gets deadlines a person will wait for; the server's retry windows are capped so
 * that clients sent away come back within seconds; and clients pause after a task so that one client does
 * not take two slots of a round (the server does not tie tasks to clients).
 */
const DEMO = {
  selectionTimeoutS: 10,
  reportingDeadlineS: 15,
  retryMaxSeconds: 8,
  pauseAfterTaskS: 3,
  slowDelayS: 2,
  // SecAgg (--secure): the key exchange and the unmasking step get as long as selection; the reporting
  // deadline counts from the round's opening, so it covers selection and the key exchange as well.
  sharingTimeoutS: 10,
  unmaskingTimeoutS: 10,
} as const;

interface DemoFlags {
  rounds: number;
  targetAccuracy: number;
  clients: number;
  seed: number;
  dropout: number;
  slow: number;
  timeScale: number;
  logLevel: string;
  json?: boolean;
  local?: boolean;
  secure?: boolean;
}

/**
 * `roundhouse demo`: FedAvg on the digits data, end to end in one process: the round server with a worker
 * (on Redis under a private key prefix, deleted at the end), the library's FedAvg plan, and 100 simulated
 * non-IID clients over real HTTP, some dropping out and some late, until held-out accuracy reaches the
 * target. `--secure` runs the library's secure FedAvg instead, its model changes masked with SecAgg+.
 * `--local` runs the same plan with the local runner instead.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'train the FedAvg digits plan through a round server in this process with 100 simulated clients',
    )
    .option('--rounds <n>', 'the most rounds to run (the plan has this many)', positiveInt('--rounds'), 50)
    .option(
      '--target-accuracy <a>',
      'stop once held-out accuracy reaches this',
      fraction('--target-accuracy'),
      0.9,
    )
    .option(
      '--clients <n>',
      'simulated clients (non-IID: two label shards each)',
      positiveInt('--clients'),
      100,
    )
    .option('--seed <n>', 'seed of the data split, the partition and the clients', (v) => Number(v), 1)
    .option('--dropout <p>', 'chance that a task is dropped after download', fraction('--dropout'), 0.05)
    .option(
      '--slow <p>',
      `chance that a task uploads ${DEMO.slowDelayS} s late (a straggler)`,
      fraction('--slow'),
      0.05,
    )
    .option(
      '--time-scale <x>',
      'multiply every client wait by this (see `roundhouse simulate`)',
      positiveNumber('--time-scale'),
      1,
    )
    .option('--log-level <level>', 'server log level (stderr)', 'warn')
    .option('--json', 'print one JSON object per round on stdout')
    .option('--local', 'run the plan with the local runner (no server, no HTTP)')
    .option(
      '--secure',
      "secure FedAvg: each client's model change in fixed point through a secure sum, masked with SecAgg+",
    )
    .action(async (opts: DemoFlags) => {
      if (opts.local) return runLocalDemo(opts);
      const started = Date.now();
      const log = createLogger({ level: opts.logLevel });
      // Ctrl-C or SIGTERM stops the simulated clients first, then the server (and a private redis-server);
      // the demo then exits as a shell reports that signal (130, 143): interrupted, not finished.
      const interrupt = abortOnSignals(log);
      // A reader of stdout that goes away (`demo | head -3`) stops it the same way, but as a finished run (0).
      const readerGone = new AbortController();
      const unhook = onClosedStdout(() => readerGone.abort(new Error('stdout closed')));
      const stop = AbortSignal.any([interrupt.signal, readerGone.signal]);
      let server: InProcessServer | undefined;
      try {
        const backend = await initBackend();
        log.info({ backend }, 'TensorFlow.js backend ready');
        // Loaded here so that the other commands do not load the server's dependencies.
        const { startInProcessServer } = await import('../simulate/in-process-server');
        const { config } = loadServerConfig({});
        server = await startInProcessServer(config, log, {
          logLevel: opts.logLevel,
          retryMinSeconds: Math.min(config.retryMinSeconds, 1),
          retryMaxSeconds: DEMO.retryMaxSeconds,
        });
        if (!stop.aborted) await runDemo(server, { ...opts, backend }, started, stop, log);
      } finally {
        await server?.close();
        interrupt.dispose();
        unhook();
      }
      if (interrupt.received) {
        process.stderr.write(`demo: stopped (${interrupt.received})\n`);
        process.exitCode = signalExitCode(interrupt.received);
      }
    });
}

/** Submits the demo plan to the running server and runs the simulated population until it stops. */
async function runDemo(
  server: InProcessServer,
  opts: DemoFlags & { readonly backend: string },
  started: number,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  // Fewer clients than the library's 20 a round needs (with over-selection) get a third of them a round.
  const targetClients = Math.max(2, Math.min(20, Math.floor(opts.clients / 3)));
  const plan = serverDemoPlan(opts, targetClients);
  const { OperatorApi } = await import('../client/operator');
  const submitted = await new OperatorApi(server.url, server.operatorToken).submit(plan);
  process.stderr.write(
    // The backend is said here, not only in a log line, since the demo's log level (warn) hides those.
    `demo: server ${server.url} (Redis prefix ${server.prefix}${server.privateRedis ? ', private redis-server' : ''}; ` +
      `TensorFlow.js backend ${opts.backend}); ` +
      `plan ${submitted.id}: ${opts.secure ? 'secure FedAvg' : 'FedAvg'} MLP 64-32-10, ${targetClients} clients a round, ${opts.clients} clients, ` +
      `dropout ${opts.dropout}, slow ${opts.slow}\n`,
  );
  if (opts.secure) {
    // Beside the rounds (on stderr with --json, whose stdout is one JSON object a line): what the counts mean.
    (opts.json ? process.stderr : process.stdout).write(
      "demo: SecAgg+ runs every round: each client's model change is masked, and the server sees only their sum " +
        '(per round: cohort = clients that sent keys, shared = sent their key shares, unmasked = answered the unmasking step)\n',
    );
  }
  const result = await runAndReport(
    {
      server: server.url,
      token: server.operatorToken,
      planId: submitted.id,
      plan,
      population: digitsSource({ clients: opts.clients, seed: opts.seed }),
      seed: opts.seed,
      dropout: opts.dropout,
      slow: opts.slow,
      slowDelayS: DEMO.slowDelayS,
      timeScale: opts.timeScale,
      pauseAfterTaskS: DEMO.pauseAfterTaskS,
      targetAccuracy: opts.targetAccuracy,
    },
    { json: opts.json, log, signal },
  );
  const acc = result.accuracy === undefined ? 'n/a' : result.accuracy.toFixed(4);
  const completed = result.rounds.filter((s) => s.status === 'completed').length;
  const why = {
    'target-accuracy': `target ${opts.targetAccuracy} reached`,
    'plan-finished': `the plan's ${opts.rounds} rounds are done; target ${opts.targetAccuracy} not reached`,
    rounds: 'round limit',
    aborted: 'interrupted',
  }[result.reason];
  const line =
    `demo: held-out accuracy ${acc} after ${completed} rounds (${why}), ` +
    `elapsed ${((Date.now() - started) / 1000).toFixed(1)}s`;
  if (opts.json) process.stderr.write(`${line}\n`);
  else process.stdout.write(`${line}\n`);
}

/**
 * The plan the server runs: the library's FedAvg, or with `--secure` its secure FedAvg, with deadlines a
 * person will wait for (SecAgg's key exchange and unmasking too). The reporting deadline counts from the
 * round's opening, so with SecAgg it covers selection and the key exchange as well.
 */
function serverDemoPlan(opts: DemoFlags, targetClients: number): Plan {
  return PLAN_LIBRARY.fedavg!.build({
    rounds: opts.rounds,
    targetClients,
    minReports: Math.ceil(targetClients / 2),
    selectionTimeout: DEMO.selectionTimeoutS,
    reportingDeadline: opts.secure
      ? DEMO.selectionTimeoutS + DEMO.sharingTimeoutS + DEMO.reportingDeadlineS
      : DEMO.reportingDeadlineS,
    ...(opts.secure
      ? { secure: true, sharingTimeout: DEMO.sharingTimeoutS, unmaskingTimeout: DEMO.unmaskingTimeoutS }
      : {}),
  });
}

/** The previous demo: the same plan run by the local runner, every round in one process without HTTP. */
async function runLocalDemo(opts: DemoFlags): Promise<void> {
  const log = createLogger();
  log.info({ backend: await initBackend() }, 'TensorFlow.js backend ready');
  const { train, test } = trainTestSplit(loadDigits(), 0.2, opts.seed);
  const parts = partitionNonIid(train.y, opts.clients, 2, opts.seed);
  const clients = new Map(parts.map((idx, i) => [`client-${i}`, digitsClientExamples(train, idx)]));
  const heldout = digitsClientExamples(
    test,
    Array.from({ length: test.n }, (_, i) => i),
  );
  // The local runner sums the secure sums in this process, unmasked: there is no server to hide them from.
  const plan = PLAN_LIBRARY.fedavg!.build({ rounds: opts.rounds, secure: opts.secure ?? false });
  const runner = new LocalRunner(plan, clients, { seed: opts.seed, evaluationData: heldout });
  log.info(
    { plan: plan.name, clients: clients.size, heldout: test.n, rounds: opts.rounds },
    opts.secure
      ? 'running secure FedAvg locally (secure sums summed in process, no SecAgg)'
      : 'running FedAvg locally',
  );
  const started = Date.now();
  let rounds = 0;
  let accuracy: number | undefined;
  try {
    let t = Date.now();
    for (const r of runner.rounds()) {
      const now = Date.now();
      process.stdout.write(
        opts.json ? `${JSON.stringify(r)}\n` : `${formatRound(r, opts.rounds, now - t)}\n`,
      );
      t = now;
      rounds += 1;
      const a = (r.evaluation as { accuracy?: unknown } | undefined)?.accuracy;
      if (typeof a === 'number') accuracy = a;
      // Like the server demo: stop once the held-out accuracy reaches the target.
      if (accuracy !== undefined && accuracy >= opts.targetAccuracy) break;
    }
  } finally {
    runner.dispose();
  }
  const reached = accuracy !== undefined && accuracy >= opts.targetAccuracy;
  const line =
    `demo: held-out accuracy ${accuracy === undefined ? 'n/a' : accuracy.toFixed(4)} after ${rounds} rounds ` +
    `(${reached ? `target ${opts.targetAccuracy} reached` : `the plan's ${opts.rounds} rounds are done; target ${opts.targetAccuracy} not reached`}), ` +
    `elapsed ${((Date.now() - started) / 1000).toFixed(1)}s`;
  if (opts.json) process.stderr.write(`${line}\n`);
  else process.stdout.write(`${line}\n`);
}
