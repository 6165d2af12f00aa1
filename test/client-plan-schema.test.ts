/**
 * The client-plan document as a live server sends it, against schemas/client-plan.schema.json, the schema
 * docs/protocol.md and the OpenAPI document give third-party client authors. Real HTTP (port 0) against a
 * real Redis (127.0.0.1:6379) on a unique key prefix; no worker runs, since nothing here is uploaded.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import Ajv from 'ajv';
import pino from 'pino';
import clientPlanSchema from '../schemas/client-plan.schema.json';
import computationSchema from '../schemas/computation.schema.json';
import openApiDocument from '../schemas/openapi.json';
import planSchema from '../schemas/plan.schema.json';
import typeSchema from '../schemas/type.schema.json';
import { BullJobs } from '../src/aggregation/jobs';
import { createApp } from '../src/api/app';
import { bundleLeaves } from '../src/codec';
import type { TffType } from '../src/compute/types';
import { loadConfig } from '../src/config';
import { LocalEvaluator } from '../src/isolate/local-evaluator';
import { PLAN_LIBRARY } from '../src/plans';
import { RoundEngine } from '../src/rounds/engine';
import { StorePlanCache } from '../src/rounds/plan-cache';
import { openTestStore, type TestStore } from '../src/store/testing';

const OPERATOR = 'operator-token-for-client-plan-schema';

/** A fresh ajv holding only the schema files, as a client author would load them from schemas/. */
function clientPlanValidator() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const s of [typeSchema, computationSchema, planSchema]) ajv.addSchema(s);
  return ajv.compile(clientPlanSchema);
}

let ts: TestStore;
let jobs: BullJobs;
let server: http.Server;
let url: string;

beforeAll(async () => {
  ts = openTestStore('client-plan-schema');
  jobs = new BullJobs(ts.redis, ts.prefix);
  const limits = loadConfig({}).limits;
  const plans = new StorePlanCache(ts.store, limits);
  const log = pino({ level: 'silent' });
  const engine = new RoundEngine({
    store: ts.store,
    jobs,
    plans,
    evaluator: new LocalEvaluator(limits),
    config: { limits, maxRoundAttempts: 10 },
    log,
  });
  server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = loadConfig(
    {},
    { operatorToken: OPERATOR, tokenSecret: 'client-plan-schema-secret', publicUrl: url },
  );
  server.on('request', createApp({ config, store: ts.store, engine, plans, jobs, log }));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await jobs.queue.obliterate({ force: true });
  await jobs.close();
  await ts.close();
});

let populations = 0;

/**
 * Submits a plan (in a population of its own, so that the check-in can only be answered with it) and returns
 * the client plan its assignment points at, fetched as a client would.
 */
async function clientPlanOf(plan: object): Promise<Record<string, unknown>> {
  const submitted = await fetch(`${url}/v1/plans`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...plan, population: `client-plan-schema-${++populations}` }),
  });
  expect(submitted.status).toBe(201);
  const { id, population } = (await submitted.json()) as { id: string; population: string };
  const checkin = await fetch(`${url}/v1/populations/${population}/checkin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ device_id: `device-of-${id}` }),
  });
  const answer = (await checkin.json()) as { assignment: { plan_id: string; client_plan_url: string } };
  expect(answer.assignment.plan_id).toBe(id);
  const res = await fetch(answer.assignment.client_plan_url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return (await res.json()) as Record<string, unknown>;
}

describe('schemas/client-plan.schema.json', () => {
  const validate = clientPlanValidator();

  it.each([
    ['federated-sum', PLAN_LIBRARY['federated-sum']!.build({ rounds: 1, targetClients: 1 })],
    ['histogram --secure', PLAN_LIBRARY.histogram!.build({ secure: true, rounds: 1, targetClients: 3 })],
    ['fedavg', PLAN_LIBRARY.fedavg!.build({ layers: [4, 3, 2], rounds: 1, targetClients: 1 })],
  ])('accepts the client plan the server sends for %s', async (_name, plan) => {
    const doc = await clientPlanOf(plan);
    const valid = validate(doc);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    // The upload's tensor names follow from upload_type alone (docs/protocol.md, "Tensor names").
    const names = bundleLeaves(doc.upload_type as TffType).map((l) => l.name);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(name).toMatch(/^[0-3](\/[A-Za-z0-9_]+)*$/);
  });

  it('refuses documents that break it, so the checks above can fail', async () => {
    const doc = await clientPlanOf(PLAN_LIBRARY['federated-sum']!.build({ rounds: 1, targetClients: 1 }));
    const broken = [
      { ...doc, format: 'roundhouse.client-plan/v2' },
      Object.fromEntries(Object.entries(doc).filter(([k]) => k !== 'work')),
      { ...doc, upload_type: { kind: 'struct', fields: [] } },
      { ...doc, extra: true },
    ];
    for (const b of broken) expect(validate(b)).toBe(false);
  });

  it('is what the OpenAPI document names for the client-plan response', () => {
    const response =
      openApiDocument.paths['/v1/plans/{id}/client-plan'].get.responses['200'].content['application/json']
        .schema;
    expect(response).toEqual({ $ref: '#/components/schemas/ClientPlan' });
    expect(openApiDocument.components.schemas.ClientPlan.$ref).toBe('client-plan.schema.json');
  });
});
