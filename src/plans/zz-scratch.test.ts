import { initBackend } from '../compute/backend';
import { loadDigits, trainTestSplit, partitionNonIid, digitsClientExamples } from '../data/digits';
import { LocalRunner } from '../runner/local-runner';
import { PLAN_LIBRARY } from '.';

it('digits reference', async () => {
  console.log(await initBackend());
  const all = loadDigits();
  const { train, test } = trainTestSplit(all, 0.2, 0);
  const parts = partitionNonIid(train.y, 100, 2, 0);
  const clients = new Map(parts.map((idx, i) => [`c${i}`, digitsClientExamples(train, idx)]));
  const evaluationData = digitsClientExamples(test, Array.from({ length: test.n }, (_, i) => i));
  const plan = PLAN_LIBRARY.fedavg!.build(JSON.parse(process.env.OPTS ?? '{}'));
  const runner = new LocalRunner(plan, clients, { evaluationData });
  const t = Date.now();
  const lines: string[] = [];
  for (const r of runner.rounds()) if (r.round % 10 === 0 || r.round < 3) lines.push(`${r.round} ${JSON.stringify(r.output)} ${JSON.stringify(r.evaluation)} ${Date.now() - t}ms`);
  console.log(lines.join('\n'));
}, 600000);
