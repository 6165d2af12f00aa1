import { AppError } from '../errors';
import { evaluateRetrying, failureReason } from './fault-class';

/** A fault counter as Redis keeps it for one attempt. */
function counter(start = 0) {
  let n = start;
  const count = jest.fn(() => Promise.resolve(++n));
  return count;
}

const fault = new AppError('EVAL_FAULT', 'fold: the isolate exited (code 70)');

describe('failureReason', () => {
  test.each([
    [
      'a plan error',
      new AppError('EVAL_ERROR', 'accumulate: node "x" (add): bad\n  more'),
      'accumulate: node "x" (add): bad',
    ],
    ['an int32 overflow', new AppError('EVAL_INT_OVERFLOW', 'accumulate: overflow'), 'accumulate: overflow'],
  ])('%s fails the attempt at once, without counting', async (_, e, reason) => {
    const count = counter();
    await expect(failureReason(e, count, 3)).resolves.toBe(reason);
    expect(count).not.toHaveBeenCalled();
  });

  test.each([
    ['NOT_READY', new AppError('NOT_READY', 'no plan isolate is available')],
    ['a Redis error', new Error('Connection is closed.')],
  ])('%s is retried, without counting', async (_, e) => {
    const count = counter();
    await expect(failureReason(e, count, 3)).rejects.toBe(e);
    expect(count).not.toHaveBeenCalled();
  });

  test('an isolate fault is retried until the attempt has faulted EVAL_FAULT_RETRIES times', async () => {
    const count = counter();
    await expect(failureReason(fault, count, 3)).rejects.toBe(fault);
    await expect(failureReason(fault, count, 3)).rejects.toBe(fault);
    await expect(failureReason(fault, count, 3)).resolves.toBe(
      'fold: the isolate exited (code 70) (3 faults in this attempt; EVAL_FAULT_RETRIES 3)',
    );
    expect(count).toHaveBeenCalledTimes(3);
  });

  test('an evaluation error caused by a broken backend counts as an isolate fault', async () => {
    const e = new AppError('EVAL_ERROR', 'accumulate: node "a" (add): unreachable', [], {
      cause: new WebAssembly.RuntimeError('unreachable'),
    });
    const count = counter();
    await expect(failureReason(e, count, 2)).rejects.toBe(e);
    await expect(failureReason(e, count, 2)).resolves.toMatch(
      /^accumulate: node "a" \(add\): unreachable \(2 faults/,
    );
  });

  test('a fault of an attempt that is gone (count -1) is rethrown', async () => {
    await expect(failureReason(fault, () => Promise.resolve(-1), 1)).rejects.toBe(fault);
  });
});

describe('evaluateRetrying', () => {
  test('retries an isolate fault in place and answers the value once it succeeds', async () => {
    const run = jest.fn().mockRejectedValueOnce(fault).mockResolvedValueOnce('materials');
    const count = counter();
    await expect(evaluateRetrying(run, count, 3)).resolves.toEqual({ ok: true, value: 'materials' });
    expect(run).toHaveBeenCalledTimes(2);
    expect(count).toHaveBeenCalledTimes(1);
  });

  test('gives the reason once the attempt faulted EVAL_FAULT_RETRIES times', async () => {
    const run = jest.fn().mockRejectedValue(fault);
    await expect(evaluateRetrying(run, counter(), 2)).resolves.toEqual({
      ok: false,
      reason: 'fold: the isolate exited (code 70) (2 faults in this attempt; EVAL_FAULT_RETRIES 2)',
    });
    expect(run).toHaveBeenCalledTimes(2);
  });

  test('a plan error fails at once; other errors are thrown; a lost count does not loop', async () => {
    const planError = new AppError('EVAL_ERROR', 'prepare: bad');
    await expect(evaluateRetrying(() => Promise.reject(planError), counter(), 3)).resolves.toEqual({
      ok: false,
      reason: 'prepare: bad',
    });
    const redis = new Error('Connection is closed.');
    await expect(evaluateRetrying(() => Promise.reject(redis), counter(), 3)).rejects.toBe(redis);
    const run = jest.fn().mockRejectedValue(fault);
    await expect(evaluateRetrying(run, () => Promise.resolve(-1), 2)).rejects.toBe(fault);
    expect(run).toHaveBeenCalledTimes(2);
  });
});
