/**
 * The TensorFlow.js backend of a browser client: WASM (SIMD where the browser has it), else the pure-JS CPU
 * backend. The browser counterpart of `src/compute/backend.ts`, which is Node-only (it tries the native
 * tfjs-node first) and so stays out of the bundle.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

/** The backends a browser client can run on, best first. */
export type BrowserBackendName = 'wasm' | 'cpu';

/** Options of {@link initBrowserBackend}. */
export interface BrowserBackendOptions {
  /**
   * URL prefix of the WASM binaries (`tfjs-backend-wasm*.wasm`), ending in `/`. Default: the folder the SDK
   * script was loaded from (`/sdk/` on a Roundhouse server), so a page on another origin that loads the SDK
   * from the server gets the binaries from there too.
   */
  readonly wasmPath?: string;
  /** Force one backend (e.g. `'cpu'` to compare); default WASM, then CPU. */
  readonly prefer?: BrowserBackendName;
}

/**
 * Where this script was loaded from. `document.currentScript` is only set while the script itself runs, so
 * it is read when the bundle is evaluated, not when a page calls {@link initBrowserBackend} later.
 */
const scriptUrl: string | undefined =
  typeof document !== 'undefined' && document.currentScript instanceof HTMLScriptElement
    ? document.currentScript.src || undefined
    : undefined;

/** The default {@link BrowserBackendOptions.wasmPath}: beside the SDK script, else `/sdk/` on this origin. */
export function defaultWasmPath(): string {
  return scriptUrl ? new URL('./', scriptUrl).href : '/sdk/';
}

let ready: Promise<BrowserBackendName> | undefined;

/**
 * Picks and initialises the backend once per page: WASM with its binaries from `wasmPath`, and the CPU
 * backend when WASM cannot start (no WebAssembly, the binaries not reachable, a CSP without
 * `'wasm-unsafe-eval'`). Later calls return the first call's answer whatever their options, because the
 * WASM binaries' location cannot change once the backend has started. Returns the backend in use.
 */
export function initBrowserBackend(options: BrowserBackendOptions = {}): Promise<BrowserBackendName> {
  ready ??= choose(options);
  return ready;
}

async function choose(options: BrowserBackendOptions): Promise<BrowserBackendName> {
  const order: BrowserBackendName[] = options.prefer ? [options.prefer] : ['wasm', 'cpu'];
  for (const name of order) {
    if (name === 'wasm') setWasmPaths(options.wasmPath ?? defaultWasmPath());
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch {
      // tfjs logs why a backend failed to start; the next one is tried.
    }
  }
  throw new Error(`no TensorFlow.js backend could be initialised (tried ${order.join(', ')})`);
}
