/** The tensor bundle codec (safetensors layout): typed-array layer, typed checks, tf values, base64. */
export * from './bundle';
export * from './typed-bundle';
export * from './value-bundle';
export * from './base64';
export { HOST_IS_LITTLE_ENDIAN } from './endian';
