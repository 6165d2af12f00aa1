/**
 * What the bundle gets for `import * as tf from '@tensorflow/tfjs'` (scripts/build-web.js aliases it here):
 * tfjs-core with its gradients, which has every op the interpreter uses, and the CPU backend, the fallback
 * of web/backend.ts. The full `@tensorflow/tfjs` package would add WebGL, layers, the converter and tf.data,
 * which the SDK never uses, and triple the bundle. tfjs-backend-cpu is a dependency of both tfjs and
 * tfjs-backend-wasm at the same pinned version, so it resolves to the one copy they share.
 */
export * from '@tensorflow/tfjs-core';
// As the union package does: tfjs-core registers no gradients (value_and_grad needs them) nor the chained
// tensor methods (`t.reshape(...)`) by itself.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-backend-cpu';
