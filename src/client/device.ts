/**
 * The device's identity as the SDK keeps it (README, "Device credentials"). A device id is a random id made
 * once per installation and kept in a {@link DeviceIdStore}: `localStorage` in browsers, a file in Node
 * (`FileDeviceIdStore` in `./node`), memory otherwise. In anonymous mode it is the device id the server
 * counts; in signed mode the operator's app backend issues credentials and the id only names the install.
 */

/** Where a device id lives between runs. Synchronous so that a client knows its id when it is made. */
export interface DeviceIdStore {
  /** The stored id, or undefined when none was stored yet. */
  get(): string | undefined;
  set(id: string): void;
}

/** A device id for this process only (tests, simulations, platforms without storage). */
export class MemoryDeviceIdStore implements DeviceIdStore {
  constructor(private id?: string) {}
  get(): string | undefined {
    return this.id;
  }
  set(id: string): void {
    this.id = id;
  }
}

/** The minimal `Storage` interface (a browser's `localStorage`). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** The key under which {@link LocalStorageDeviceIdStore} keeps the id by default. */
export const DEVICE_ID_STORAGE_KEY = 'roundhouse.device_id';

/** A device id in a page's `localStorage` (or any `Storage`), shared by every tab of the origin. */
export class LocalStorageDeviceIdStore implements DeviceIdStore {
  constructor(
    private readonly storage: KeyValueStorage,
    private readonly key: string = DEVICE_ID_STORAGE_KEY,
  ) {}
  get(): string | undefined {
    return this.storage.getItem(this.key) ?? undefined;
  }
  set(id: string): void {
    this.storage.setItem(this.key, id);
  }
}

/** `localStorage` when the platform has a usable one, else memory. */
export function defaultDeviceIdStore(): DeviceIdStore {
  try {
    const storage = (globalThis as { localStorage?: KeyValueStorage }).localStorage;
    if (storage) {
      // Private modes may expose a localStorage that throws on write; probe it once.
      storage.setItem(`${DEVICE_ID_STORAGE_KEY}.probe`, '1');
      return new LocalStorageDeviceIdStore(storage);
    }
  } catch {
    // fall through to memory
  }
  return new MemoryDeviceIdStore();
}

/** A new random device id: 128 bits as 32 hex characters. */
export function newDeviceId(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** What a device id may be: what the server accepts (visible ASCII, at most 4096 characters). */
export function isDeviceId(id: string): boolean {
  return id.length > 0 && id.length <= 4096 && /^[\x21-\x7e]+$/.test(id);
}

/** The store's id, or a new one saved to it (a stored id the server would refuse is replaced). */
export function loadOrCreateDeviceId(store: DeviceIdStore): string {
  const stored = store.get();
  if (stored !== undefined && isDeviceId(stored)) return stored;
  const id = newDeviceId();
  store.set(id);
  return id;
}
