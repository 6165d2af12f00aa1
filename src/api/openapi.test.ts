import type { AddressInfo } from 'node:net';
import pino from 'pino';
import checkinRequestSchema from '../../schemas/api/checkin-request.schema.json';
import sessionAnswersSchema from '../../schemas/api/session-answers.schema.json';
import { loadConfig } from '../config';
import { ERROR_CODES } from '../errors';
import type { Engine, Jobs, PlanCache } from '../rounds/contracts';
import type { ProgramStore } from '../stateful/server/program-store';
import type { RoundStore } from '../store/types';
import { createApp } from './app';
import { listRoutes, openApiDocument } from './openapi';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

function appWithoutStore() {
  return createApp({
    config: loadConfig({}, { operatorToken: 'op', tokenSecret: 'secret' }),
    store: {} as RoundStore,
    engine: {} as Engine,
    plans: {} as PlanCache,
    jobs: {} as Jobs,
    // The program and session routes are mounted only with a program store: list them too.
    programs: {} as ProgramStore,
    log: pino({ level: 'silent' }),
  });
}

type Operation = { responses: Record<string, { 'x-error-codes'?: string[] }> };
const paths = openApiDocument.paths as unknown as Record<string, Record<string, Operation>>;

function documented(): string[] {
  return Object.entries(paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => METHODS.includes(m))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
}

describe('the OpenAPI document', () => {
  it('lists exactly the routes of the app', () => {
    const routes = listRoutes(appWithoutStore()).map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(routes.length).toBeGreaterThan(10);
    expect(new Set(routes).size).toBe(routes.length);
    expect([...routes].sort()).toEqual(documented().sort());
  });

  it('is OpenAPI 3.1 and every path parameter is declared', () => {
    expect(openApiDocument.openapi).toMatch(/^3\.1\./);
    for (const [path, item] of Object.entries(paths)) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const op of Object.values(item)) {
        const declared = ((op as { parameters?: { in: string; name: string }[] }).parameters ?? [])
          .filter((p) => p.in === 'path')
          .map((p) => p.name);
        expect(declared.sort()).toEqual([...names].sort());
      }
    }
  });

  it('names only error codes of src/errors.ts, each under its own status', () => {
    const errorSchema = openApiDocument.components.schemas.Error.properties.error.properties.code;
    expect([...errorSchema.enum].sort()).toEqual(Object.keys(ERROR_CODES).sort());
    let seen = 0;
    for (const item of Object.values(paths)) {
      for (const op of Object.values(item)) {
        for (const [status, response] of Object.entries(op.responses)) {
          for (const code of response['x-error-codes'] ?? []) {
            seen++;
            expect([code, ERROR_CODES[code as keyof typeof ERROR_CODES]]).toEqual([code, Number(status)]);
          }
        }
      }
    }
    expect(seen).toBeGreaterThan(20);
  });

  it('describes the check-in body with the schema the API validates against', () => {
    const { $id: _id, $schema: _schema, ...rest } = checkinRequestSchema;
    expect(openApiDocument.components.schemas.CheckinRequest).toEqual(rest);
  });

  it('describes the session answers body with the schema the API validates against', () => {
    const { $id: _id, $schema: _schema, ...rest } = sessionAnswersSchema;
    expect(openApiDocument.components.schemas.SessionAnswers).toEqual(rest);
  });

  it('is served at /v1/openapi.json', async () => {
    const server = appWithoutStore().listen(0);
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/v1/openapi.json`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(await res.json()).toEqual(openApiDocument);
      const missing = await fetch(`http://127.0.0.1:${port}/v1/nothing`);
      expect(missing.status).toBe(404);
      expect((await missing.json()).error.code).toBe('NOT_FOUND');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
