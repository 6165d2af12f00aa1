// Baseline servers for the HTTP benchmarks: a bare express app (or, with `http`, Node's bare http server
// answering every request as the check-in endpoint) with a JSON endpoint that answers like a
// check-in (parsing the body the same way), a raw-body endpoint that accepts uploads and does nothing, and
// a calibration endpoint for the design of issue 11 ("fold where the bytes arrive"): it reads the upload's
// bundle, checks its floats are finite, computes its single-use HMAC and adds it into one in-memory partial,
// which is the least an API process folding uploads itself must do per upload (no Redis, no queue).
import { createHmac } from 'node:crypto';
import * as http from 'node:http';
import express from 'express';
import { readBundle } from '../src/codec';
import { firstNonFinite } from '../src/codec/typed-bundle';

const port = Number(process.argv[2] ?? 0);
const app = express();
app.post('/checkin', express.json(), (_req, res) => {
  res.json({ retry: { min_seconds: 1, max_seconds: 2 } });
});
app.post('/upload', express.raw({ type: () => true, limit: '64mb' }), (_req, res) => {
  res.status(202).json({ accepted: true });
});
let partial: Float32Array | undefined;
app.post('/fold', express.raw({ type: () => true, limit: '64mb' }), (req, res) => {
  const bytes = req.body as Buffer;
  const [tensor] = readBundle(bytes).tensors;
  const data = tensor!.data as Float32Array;
  if (firstNonFinite(data) >= 0) {
    res.status(400).json({ error: 'not finite' });
    return;
  }
  createHmac('sha256', 'calibration').update(bytes).digest('base64url');
  if (!partial || partial.length !== data.length) partial = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) partial[i]! += data[i]!;
  res.status(202).json({ accepted: true });
});
// `node bare-server.js PORT http`: the same check-in answer from Node's own http server, no express: the
// floor of what serving a route ahead of express can reach (bench/checkin.ts prints it as a calibration).
const plainCheckin: http.RequestListener = (req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    JSON.parse(body || '{}');
    const text = JSON.stringify({ retry: { min_seconds: 1, max_seconds: 2 } });
    res.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
  });
};
const server = (process.argv[3] === 'http' ? http.createServer(plainCheckin) : http.createServer(app)).listen(
  port,
  '127.0.0.1',
  () => process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`),
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
