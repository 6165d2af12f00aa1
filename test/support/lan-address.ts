import * as os from 'node:os';

/**
 * The machine's first non-loopback IPv4 address, the one a phone on the same network would open, or
 * undefined on a machine without one (a container with loopback only).
 */
export function lanAddress(): string | undefined {
  for (const nets of Object.values(os.networkInterfaces())) {
    for (const net of nets ?? []) {
      if (net.family === 'IPv4' && !net.internal) return net.address;
    }
  }
  return undefined;
}

/** 127.0.0.1, and the LAN address when there is one: the addresses a test reaches a server at. */
export function reachableAddresses(): string[] {
  const lan = lanAddress();
  return lan === undefined ? ['127.0.0.1'] : ['127.0.0.1', lan];
}
