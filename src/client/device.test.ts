import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadOrCreateDeviceId, MemoryDeviceIdStore, newDeviceId } from './device';
import { FileDeviceIdStore } from './node';

describe('device ids', () => {
  it('are 128 random bits, made once and then read back from the store', () => {
    const store = new MemoryDeviceIdStore();
    const id = loadOrCreateDeviceId(store);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(loadOrCreateDeviceId(store)).toBe(id);
    expect(newDeviceId()).not.toBe(id);
  });

  it('replace a stored id the server would refuse', () => {
    const store = new MemoryDeviceIdStore('not a device id');
    const id = loadOrCreateDeviceId(store);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(store.get()).toBe(id);
  });

  it('persist in a file (mode 0600, directory created) across client restarts', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rh-device-'));
    try {
      const file = path.join(dir, 'nested', 'device-id');
      const id = loadOrCreateDeviceId(new FileDeviceIdStore(file));
      expect(loadOrCreateDeviceId(new FileDeviceIdStore(file))).toBe(id);
      expect(fs.readFileSync(file, 'utf8')).toBe(`${id}\n`);
      if (process.platform !== 'win32') expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
