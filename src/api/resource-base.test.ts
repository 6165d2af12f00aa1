import type { IncomingMessage } from 'node:http';
import { loadConfig } from '../config';
import { AppError } from '../errors';
import { plainHost, resourceBase } from './resource-base';

describe('plainHost', () => {
  test.each([
    ['127.0.0.1:8080', '127.0.0.1:8080'],
    ['localhost:8080', 'localhost:8080'],
    ['192.168.1.23:8080', '192.168.1.23:8080'],
    ['Roundhouse.Example', 'roundhouse.example'],
    ['roundhouse.example:80', 'roundhouse.example'],
    ['roundhouse_api_1:8080', 'roundhouse_api_1:8080'],
    ['[::1]:8080', '[::1]:8080'],
    ['[FD00:0::2]', '[fd00::2]'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
  ])('accepts %j as %j', (header, host) => {
    expect(plainHost(header, 'http')).toBe(host);
  });

  test('leaves out the default port of the scheme only', () => {
    expect(plainHost('example.org:443', 'https')).toBe('example.org');
    expect(plainHost('example.org:443', 'http')).toBe('example.org:443');
  });

  test.each([
    ['a path', 'evil.example/phish?'],
    ['a query', 'evil.example?x=1'],
    ['a fragment', 'evil.example#x'],
    ['user info', 'user@evil.example'],
    ['user info before the real host', 'roundhouse.example:8080@evil.example'],
    ['a backslash', 'evil.example\\x'],
    ['a space', 'evil.example x'],
    ['a percent-encoded character', 'evil%2eexample'],
    ['two ports', 'host:80:81'],
    ['a port above 65535', 'host:65536'],
    ['port 0', 'host:0'],
    ['an empty port', 'host:'],
    ['a scheme', 'http://evil.example'],
    ['a leading hyphen', '-host'],
    ['an empty label', 'a..b'],
    ['a trailing dot', 'example.org.'],
    ['an IPv4 address out of range', '999.1.1.1'],
    ['an IPv6 zone', '[fe80::1%25eth0]'],
    ['an unbracketed IPv6 address', '::1'],
    ['a bracketed name', '[evil.example]'],
    ['non-ASCII', 'bücher.example'],
    ['a quote', 'a"b'],
    ['a label over 63 characters', `${'a'.repeat(64)}.example`],
    ['a name over 260 characters', `${'a.'.repeat(131)}b`],
  ])('refuses %s', (_what, header) => {
    expect(plainHost(header, 'http')).toBeUndefined();
  });
});

/** The parts of a request `resourceBase` reads. */
function request(host: string | undefined, protocol = 'http'): IncomingMessage {
  const socket = { encrypted: protocol === 'https' };
  return { headers: host === undefined ? {} : { host }, socket } as unknown as IncomingMessage;
}

describe('resourceBase', () => {
  const fromHost = loadConfig({ PORT: '8080' });
  const fixed = loadConfig({ PORT: '8080', PUBLIC_URL: 'https://rounds.example/base/' });

  test('without PUBLIC_URL: the scheme and host of the request', () => {
    expect(fromHost.publicUrlFromHost).toBe(true);
    expect(resourceBase(request('192.168.1.23:8080'), fromHost)).toBe('http://192.168.1.23:8080');
    expect(resourceBase(request('rounds.example', 'https'), fromHost)).toBe('https://rounds.example');
  });

  test('without PUBLIC_URL and without a Host header (HTTP/1.0): the localhost default', () => {
    expect(resourceBase(request(undefined), fromHost)).toBe('http://localhost:8080');
  });

  test('without PUBLIC_URL, a Host that is not a plain host[:port] is refused with REQUEST_INVALID', () => {
    const thrown = (() => {
      try {
        resourceBase(request('evil.example/x?'), fromHost);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(thrown).toBeInstanceOf(AppError);
    expect((thrown as AppError).code).toBe('REQUEST_INVALID');
    expect((thrown as AppError).details[0]?.path).toBe('Host');
  });

  test('with PUBLIC_URL: always PUBLIC_URL (without its trailing slash), whatever the Host', () => {
    expect(fixed.publicUrlFromHost).toBe(false);
    for (const host of ['127.0.0.1:8080', 'evil.example/x?', undefined]) {
      expect(resourceBase(request(host), fixed)).toBe('https://rounds.example/base');
    }
  });

  test('a publicUrl override counts as PUBLIC_URL; publicUrlFromHost can be forced either way', () => {
    expect(loadConfig({}, { publicUrl: 'http://127.0.0.1:1' }).publicUrlFromHost).toBe(false);
    expect(loadConfig({}, { publicUrl: 'http://x:1', publicUrlFromHost: true }).publicUrlFromHost).toBe(true);
    expect(loadConfig({ PUBLIC_URL: 'http://x:1' }, { publicUrlFromHost: true }).publicUrlFromHost).toBe(
      true,
    );
  });
});
