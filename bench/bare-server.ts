// Baseline servers for the HTTP benchmarks: a bare express app with a JSON endpoint that answers like a
// check-in (parsing the body the same way) and a raw-body endpoint that accepts uploads and does nothing.
import express from 'express';

const port = Number(process.argv[2] ?? 0);
const app = express();
app.post('/checkin', express.json(), (_req, res) => {
  res.json({ retry: { min_seconds: 1, max_seconds: 2 } });
});
app.post('/upload', express.raw({ type: () => true, limit: '64mb' }), (_req, res) => {
  res.status(202).json({ accepted: true });
});
const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
