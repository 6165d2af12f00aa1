import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/compute/backend';

// The `cpu` jest project: the same unit tests on the pure-JS CPU backend, which browsers fall back to when
// WASM cannot load, so that a client's results do not depend on the backend it got. No silent fallback.
beforeAll(async () => {
  // Quiets the CPU backend's advice to install tfjs-node, printed once per test file.
  tf.env().set('IS_TEST', true);
  expect(await initBackend('cpu')).toBe('cpu');
});
