import { EventEmitter } from 'node:events';
import { exitQuietlyOnClosedPipe, isClosedPipe, onClosedStdout } from './closed-pipe';

const epipe = (): NodeJS.ErrnoException => Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });

test('an EPIPE on stdout exits 0 once; later errors of the destroyed stream are ignored', () => {
  const stream = new EventEmitter();
  const exits: number[] = [];
  exitQuietlyOnClosedPipe(stream, { exit: (c) => void exits.push(c), stoppers: new Set() });
  stream.emit('error', epipe());
  stream.emit('error', Object.assign(new Error('destroyed'), { code: 'ERR_STREAM_DESTROYED' }));
  expect(exits).toEqual([0]);
});

test('a command with a shutdown of its own is asked to stop instead of exiting', () => {
  const stream = new EventEmitter();
  const calls: string[] = [];
  exitQuietlyOnClosedPipe(stream, {
    exit: (c) => void calls.push(`exit ${c}`),
    stoppers: new Set([() => void calls.push('stop')]),
  });
  stream.emit('error', epipe());
  stream.emit('error', epipe());
  expect(calls).toEqual(['stop']);
});

test('any other stream error still fails loudly', () => {
  const stream = new EventEmitter();
  exitQuietlyOnClosedPipe(stream, { exit: () => undefined, stoppers: new Set() });
  expect(() => stream.emit('error', Object.assign(new Error('disk full'), { code: 'ENOSPC' }))).toThrow(
    'disk full',
  );
});

test('isClosedPipe recognises EPIPE only', () => {
  expect(isClosedPipe(epipe())).toBe(true);
  expect(isClosedPipe(new Error('x'))).toBe(false);
  expect(isClosedPipe(null)).toBe(false);
});

test('onClosedStdout registers a stop until unregistered', () => {
  const stream = new EventEmitter();
  const calls: string[] = [];
  const off = onClosedStdout(() => void calls.push('stop'));
  exitQuietlyOnClosedPipe(stream, { exit: (c) => void calls.push(`exit ${c}`) });
  off();
  stream.emit('error', epipe());
  expect(calls).toEqual(['exit 0']);
});
