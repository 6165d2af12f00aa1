/**
 * Whether this host stores multi-byte numbers little-endian. Bundles are little-endian on the wire and the
 * codec views their bytes through Float32Array/Int32Array without swapping, which is only correct on a
 * little-endian host (every realistic target: x86, ARM as configured by every mainstream OS, WASM).
 */
export const HOST_IS_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Throws unless the host is little-endian; called when the codec loads so a wrong host fails at once, not with garbage. */
export function assertLittleEndian(littleEndian: boolean = HOST_IS_LITTLE_ENDIAN): void {
  if (!littleEndian) {
    throw new Error(
      'roundhouse codec: this host is big-endian; tensor bundles are little-endian and the codec does not byte-swap',
    );
  }
}

assertLittleEndian();
