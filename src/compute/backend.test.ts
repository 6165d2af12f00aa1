import * as tf from '@tensorflow/tfjs';
import { backendFromEnv, initBackend } from './backend';
test('backend', async () => {
  const b = await initBackend();
  expect(b).toBe('wasm');
  expect(tf.getBackend()).toBe('wasm');
  tf.tidy(() => {
    expect(tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]).toBe(3);
  });
});

test('ROUNDHOUSE_BACKEND names a backend or is refused with the names that exist', () => {
  expect(backendFromEnv(undefined)).toBeUndefined();
  expect(backendFromEnv('')).toBeUndefined();
  expect(backendFromEnv('cpu')).toBe('cpu');
  expect(() => backendFromEnv('webgl')).toThrow(
    'ROUNDHOUSE_BACKEND must be one of tensorflow, wasm, cpu, got "webgl"',
  );
});
