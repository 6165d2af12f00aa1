// A Roundhouse client in Node: it joins the `digits` population with two local examples and trains
// whenever the server has a task for it. Run a server first (`npm start`), then: node examples/node-client.js
const os = require('node:os');
const path = require('node:path');
const { RoundhouseClient, MemoryExampleStore } = require('roundhouse/client');
const { FileDeviceIdStore } = require('roundhouse/client/node');
const { initBackend } = require('roundhouse/backend');

async function main() {
  await initBackend(); // tfjs-node if installed, else WASM, else CPU
  const pixels = Float32Array.from({ length: 2 * 64 }, (_, i) => (i % 9) / 16); // two 8x8 images, 0..1
  const store = new MemoryExampleStore({ digits: { count: 2, leaves: [pixels, Int32Array.from([3, 7])] } });
  const client = new RoundhouseClient({
    server: process.env.ROUNDHOUSE_URL ?? 'http://localhost:8080',
    population: 'digits',
    store,
    // One device id per installation, kept across restarts: the server gives a device one task per round.
    deviceIdStore: new FileDeviceIdStore(
      process.env.DEVICE_ID_FILE ?? path.join(os.homedir(), '.roundhouse', 'device-id'),
    ),
  });
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  await client.run({
    signal: stop.signal,
    maxTasks: Number(process.env.MAX_TASKS ?? Infinity),
    onOutcome: (o) =>
      console.log(
        o.kind,
        o.assignment ? `round ${o.assignment.round}` : `wait ${(o.waitMs / 1000).toFixed(1)} s`,
      ),
    // The client keeps trying (with a growing backoff) when the server cannot be reached; say so.
    onError: (e, assignment) =>
      console.error(
        assignment ? `task of round ${assignment.round} failed:` : 'check-in failed:',
        e instanceof Error ? e.message : String(e),
      ),
  });
}

main().catch((e) => (console.error(e.message), process.exit(1)));
