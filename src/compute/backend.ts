import * as tf from '@tensorflow/tfjs';

/** The TensorFlow.js backends Roundhouse can run on, best first. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

let ready: Promise<BackendName> | undefined;

/**
 * Picks and initialises the TensorFlow.js backend once per process: the native tfjs-node backend when it is
 * installed, else WASM (SIMD, shipped in the npm package), else the pure-JS CPU backend. `prefer` forces
 * one (for tests and benchmarks). Returns the backend in use; callers log it.
 */
export function initBackend(prefer?: BackendName): Promise<BackendName> {
  ready ??= choose(prefer);
  return ready;
}

async function choose(prefer?: BackendName): Promise<BackendName> {
  const order: BackendName[] = prefer ? [prefer] : ['tensorflow', 'wasm', 'cpu'];
  for (const name of order) {
    if (await tryBackend(name)) return name;
  }
  throw new Error(`no TensorFlow.js backend could be initialised (tried ${order.join(', ')})`);
}

async function tryBackend(name: BackendName): Promise<boolean> {
  try {
    if (name === 'tensorflow') {
      // Optional dependency: its install step downloads libtensorflow, so it is often absent.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs-node');
    } else if (name === 'wasm') {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs-backend-wasm');
    }
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}
