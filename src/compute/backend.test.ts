import * as tf from '@tensorflow/tfjs';
import { initBackend } from './backend';
test('backend', async () => {
  const b = await initBackend();
  expect(b).toBe('wasm');
  expect(tf.getBackend()).toBe('wasm');
  tf.tidy(() => {
    expect(tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]).toBe(3);
  });
});
