// The baseline of bench/sessions.ts: a bare express app that holds long polls the way the session routes
// do (GET .../requests?after=&wait=, answered at once when requests are ready, else when the next one is
// issued or the wait runs out) with its requests in memory and one in-process EventEmitter to wake the
// polls: no tokens, no Redis, no second process. Devices check in, poll and answer as they do with
// Roundhouse, so that the same load generator drives both; `POST /issue` appends a request and wakes them.
import { EventEmitter } from 'node:events';
import express from 'express';
import { gcMemory, serveQuestions } from './instrumented';

const port = Number(process.argv[2] ?? 0);
const app = express();
app.set('query parser', false);
const issued: { seq: number; request: unknown }[] = [];
const events = new EventEmitter();
// One listener per held poll, as the server's ProgramEvents.
events.setMaxListeners(0);
let sessions = 0;
let base = '';

app.post('/checkin', express.json(), (_req, res) => {
  const id = String(sessions++);
  res.set('Cache-Control', 'no-store').json({
    session: {
      session_id: id,
      token: 'baseline',
      requests_url: `${base}/sessions/${id}/requests`,
      answers_url: `${base}/sessions/${id}/answers`,
    },
  });
});

app.get('/sessions/:session/requests', (req, res) => {
  const query = new URL(req.originalUrl, 'http://query').searchParams;
  const after = Number(query.get('after') ?? 0);
  const waitS = Math.min(Number(query.get('wait') ?? 0), 30);
  const answer = (): void => {
    clearTimeout(timer);
    events.off('issue', answer);
    if (!res.writableEnded && !res.destroyed) {
      res.set('Cache-Control', 'no-store').json({ requests: issued.slice(after) });
    }
  };
  const timer = setTimeout(answer, waitS * 1000);
  if (issued.length > after) return answer();
  events.on('issue', answer);
  res.on('close', () => {
    clearTimeout(timer);
    events.off('issue', answer);
  });
});

app.post('/sessions/:session/answers', express.json(), (req, res) => {
  const answers = (req.body as { answers: { seq: number }[] }).answers;
  res.json({ answered: Math.max(0, ...answers.map((a) => a.seq)) });
});

app.post('/issue', express.json(), (req, res) => {
  issued.push({ seq: issued.length + 1, request: req.body });
  events.emit('issue');
  res.status(204).end();
});

const server = app.listen(port, '127.0.0.1', () => {
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  serveQuestions(base, { memory: gcMemory, waiting: () => events.listenerCount('issue') });
});
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
