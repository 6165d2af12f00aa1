/**
 * Bounds the WebAssembly memory of the calling thread. V8's heap limits (`resourceLimits`) do not cover
 * WebAssembly memory, which the TensorFlow.js WASM backend grows on demand up to 4 GiB: growth beyond
 * `maxBytes` is refused here, so the backend's allocation fails (it then aborts, or reports memory access
 * out of bounds) and `capHit()` tells the isolate to retire. Must run before the backend allocates.
 */
let hit = false;

/** Installs the cap on `WebAssembly.Memory.prototype.grow` for this thread. */
export function capWasmMemory(maxBytes: number): void {
  const grow = WebAssembly.Memory.prototype.grow;
  WebAssembly.Memory.prototype.grow = function capped(this: WebAssembly.Memory, pages: number): number {
    if (this.buffer.byteLength + pages * 65536 > maxBytes) {
      hit = true;
      throw new RangeError(`WebAssembly memory would exceed ${maxBytes} bytes`);
    }
    return grow.call(this, pages);
  };
}

/** Whether growth was refused since start: the backend's state is not to be trusted any more. */
export function capHit(): boolean {
  return hit;
}
