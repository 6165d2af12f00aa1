// The API process of bench/sessions.ts: exactly what `roundhouse start --no-worker` runs (the server's
// configuration from the environment, then `startServer` without a worker), plus the IPC channel of
// bench/instrumented.ts, on which the benchmark reads this process's heap after a full collection.
import { loadServerConfig } from '../src/cli/cli-config';
import { createLogger } from '../src/log/logger';
import { startServer } from '../src/runtime/server';
import { gcMemory, serveQuestions } from './instrumented';

async function main(): Promise<void> {
  const { config, generated } = loadServerConfig({});
  const log = createLogger({ level: config.logLevel });
  const server = await startServer(config, { worker: false, log, generated });
  process.once('SIGTERM', () => {
    void server.close().finally(() => process.exit(0));
  });
  serveQuestions(server.url, { memory: gcMemory });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
