import { assertLittleEndian, HOST_IS_LITTLE_ENDIAN } from './endian';

test('the test host is little-endian, and a big-endian host gets a clear error', () => {
  expect(HOST_IS_LITTLE_ENDIAN).toBe(true);
  expect(() => assertLittleEndian()).not.toThrow();
  expect(() => assertLittleEndian(false)).toThrow(/big-endian/);
});
