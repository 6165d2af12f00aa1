import * as tf from '@tensorflow/tfjs';

/** The TensorFlow.js backends Roundhouse can run on, best first. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

let ready: Promise<BackendName> | undefined;

const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/**
 * Picks and initialises the TensorFlow.js backend once per process: the native tfjs-node backend when it is
 * installed, else WASM (SIMD, shipped in the npm package), else the pure-JS CPU backend. `prefer`, else the
 * environment's `ROUNDHOUSE_BACKEND`, forces one (the CPU backend is what a browser without WASM runs, so
 * a client's results can be checked on it). Returns the backend in use; callers log it.
 */
export function initBackend(prefer?: BackendName): Promise<BackendName> {
  ready ??= Promise.resolve().then(() => choose(prefer ?? backendFromEnv(process.env['ROUNDHOUSE_BACKEND'])));
  return ready;
}

/** `ROUNDHOUSE_BACKEND`'s backend, or undefined when unset or empty; any other value is an error. */
export function backendFromEnv(value: string | undefined): BackendName | undefined {
  if (value === undefined || value === '') return undefined;
  const name = BACKENDS.find((b) => b === value);
  if (!name) throw new Error(`ROUNDHOUSE_BACKEND must be one of ${BACKENDS.join(', ')}, got "${value}"`);
  return name;
}

async function choose(prefer?: BackendName): Promise<BackendName> {
  const order: readonly BackendName[] = prefer ? [prefer] : BACKENDS;
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
