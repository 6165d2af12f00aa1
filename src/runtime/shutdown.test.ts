import pino from 'pino';
import { abortOnSignals, closeOnSignals, type ShutdownIo } from './shutdown';

const log = pino({ level: 'silent' });

function fakeIo(): ShutdownIo & { codes: number[]; send(signal: NodeJS.Signals): void } {
  const handlers = new Map<string, () => void>();
  const codes: number[] = [];
  return {
    codes,
    exit: (code) => void codes.push(code),
    on: (signal, handler) => void handlers.set(signal, handler),
    send: (signal) => handlers.get(signal)!(),
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('the first signal closes and exits as a shell reports that signal: 143 for SIGTERM, 130 for SIGINT', async () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    const io = fakeIo();
    let closed = 0;
    closeOnSignals(async () => void closed++, log, { io });
    io.send(signal);
    await tick();
    expect(closed).toBe(1);
    expect(io.codes).toEqual([code]);
  }
});

test('a failed close exits 1; a second signal exits 130 at once', async () => {
  const io = fakeIo();
  let fail: (e: Error) => void = () => undefined;
  closeOnSignals(() => new Promise<void>((_, reject) => (fail = reject)), log, { io });
  io.send('SIGINT');
  io.send('SIGINT');
  expect(io.codes).toEqual([130]);
  fail(new Error('boom'));
  await tick();
  expect(io.codes).toEqual([130, 1]);
});

test('a close that takes too long exits 1', async () => {
  const io = fakeIo();
  closeOnSignals(() => new Promise<void>(() => undefined), log, { io, timeoutMs: 10 });
  io.send('SIGTERM');
  await new Promise((r) => setTimeout(r, 30));
  expect(io.codes).toEqual([1]);
});

test('abortOnSignals: the first signal aborts, a second exits at once with its code, dispose stops listening', () => {
  const handlers = new Map<string, Set<() => void>>();
  const codes: number[] = [];
  const io = {
    exit: (code: number) => void codes.push(code),
    on: (signal: string, h: () => void) =>
      void handlers.set(signal, (handlers.get(signal) ?? new Set()).add(h)),
    off: (signal: string, h: () => void) => void handlers.get(signal)?.delete(h),
  };
  const send = (signal: string): void => handlers.get(signal)?.forEach((h) => h());
  const stop = abortOnSignals(log, io);
  expect(stop.signal.aborted).toBe(false);
  send('SIGTERM');
  expect([stop.signal.aborted, stop.received, codes]).toEqual([true, 'SIGTERM', []]);
  send('SIGINT');
  expect(codes).toEqual([130]);
  stop.dispose();
  expect([...handlers.values()].every((s) => s.size === 0)).toBe(true);
});

test('the exit code is set when the signal arrives, so a process that ends on its own mid-close is not 0', () => {
  for (const start of [
    (io: ShutdownIo) => closeOnSignals(() => new Promise<void>(() => undefined), log, { io }),
    (io: ShutdownIo) => abortOnSignals(log, io),
  ]) {
    const io = fakeIo();
    let exitCode: number | undefined;
    start({ ...io, setExitCode: (c) => void (exitCode = c) });
    io.send('SIGTERM');
    expect(exitCode).toBe(143);
    expect(io.codes).toEqual([]);
  }
});
