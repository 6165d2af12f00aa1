import { AppError } from '../errors';
import { base64ToBytes, bytesToBase64 } from './base64';

describe('base64', () => {
  test.each([
    [[], ''],
    [[0x66], 'Zg=='],
    [[0x66, 0x6f], 'Zm8='],
    [[0x66, 0x6f, 0x6f], 'Zm9v'],
    [[0xff, 0xfe, 0x00, 0x80], '//4AgA=='],
  ])('%j <-> %s', (bytes, text) => {
    expect(bytesToBase64(new Uint8Array(bytes))).toBe(text);
    expect(Array.from(base64ToBytes(text))).toEqual(bytes);
  });

  test('handles multi-megabyte inputs (chunked, no stack overflow) and agrees with Node', () => {
    const bytes = new Uint8Array(5 * 1024 * 1024 + 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    const text = bytesToBase64(bytes);
    // Buffer only as an independent reference in this Node-side test; the codec itself never uses it.
    expect(text).toBe(Buffer.from(bytes).toString('base64'));
    const back = base64ToBytes(text);
    // A plain loop: jest's toEqual on a 5 MB typed array takes many seconds.
    let same = back.length === bytes.length;
    for (let i = 0; same && i < bytes.length; i++) same = back[i] === bytes[i];
    expect(same).toBe(true);
  });

  test('encodes a subarray view, not its whole buffer', () => {
    const whole = new Uint8Array([1, 2, 3, 4, 5]);
    expect(bytesToBase64(whole.subarray(1, 4))).toBe(bytesToBase64(new Uint8Array([2, 3, 4])));
  });

  test.each(['Zg', 'Zg=', 'Z===', 'Zm9v\n', 'Zm 9', 'Zm-_', '=Zm9'])(
    'rejects %j with BUNDLE_MALFORMED',
    (text) => {
      let caught: unknown;
      try {
        base64ToBytes(text);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(AppError);
      expect((caught as AppError).code).toBe('BUNDLE_MALFORMED');
      expect((caught as AppError).details[0]?.path).toBe('base64');
    },
  );
});
