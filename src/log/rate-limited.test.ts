import { RateLimitedLog } from './rate-limited';

function recorder() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) =>
    void lines.push({ level, fields, msg });
  const log = { error: at('error'), warn: at('warn'), info: at('info') };
  return { lines, log: log as unknown as ConstructorParameters<typeof RateLimitedLog>[0] };
}

test('one line per key per window; the next one counts what was suppressed', () => {
  const { lines, log } = recorder();
  let now = 0;
  const limited = new RateLimitedLog(log, { windowMs: 1000, now: () => now });
  expect(limited.write('warn', 'ECONNREFUSED', { a: 1 }, 'redis error')).toBe(true);
  for (let i = 0; i < 5; i++) limited.write('warn', 'ECONNREFUSED', { a: 1 }, 'redis error');
  limited.write('warn', 'ETIMEDOUT', {}, 'redis error');
  now = 999;
  expect(limited.write('warn', 'ECONNREFUSED', {}, 'redis error')).toBe(false);
  now = 1000;
  limited.write('warn', 'ECONNREFUSED', { a: 2 }, 'redis error');
  expect(lines).toEqual([
    { level: 'warn', fields: { a: 1 }, msg: 'redis error' },
    { level: 'warn', fields: {}, msg: 'redis error' },
    { level: 'warn', fields: { a: 2, suppressed: 6 }, msg: 'redis error' },
  ]);
});

test('reset makes the next failure news again; the keys kept are bounded', () => {
  const { lines, log } = recorder();
  const limited = new RateLimitedLog(log, { windowMs: 60_000, now: () => 0, maxKeys: 2 });
  limited.write('error', 'a', {}, 'x');
  limited.reset();
  limited.write('error', 'a', {}, 'x');
  limited.write('error', 'b', {}, 'x');
  limited.write('error', 'c', {}, 'x');
  // 'a' was the oldest of three keys with room for two: forgotten, so it logs again.
  limited.write('error', 'a', {}, 'x');
  expect(lines.length).toBe(5);
});
