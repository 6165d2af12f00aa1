import { DEFAULT_SERVER_URL, loadOperatorConfig, loadServerConfig } from './cli-config';

describe('loadOperatorConfig', () => {
  test('flags win over the environment, which wins over the default', () => {
    const env = { ROUNDHOUSE_URL: 'http://env:1/', OPERATOR_TOKEN: 'env-token' };
    expect(loadOperatorConfig({}, {})).toEqual({ serverUrl: DEFAULT_SERVER_URL, token: undefined });
    expect(loadOperatorConfig({}, env)).toEqual({ serverUrl: 'http://env:1', token: 'env-token' });
    expect(loadOperatorConfig({ server: 'https://flag:2/base/', token: 'flag-token' }, env)).toEqual({
      serverUrl: 'https://flag:2/base',
      token: 'flag-token',
    });
  });

  test('names the setting that is not an http(s) URL', () => {
    expect(() => loadOperatorConfig({ server: 'nope' }, {})).toThrow('--server is not a URL: "nope"');
    expect(() => loadOperatorConfig({}, { ROUNDHOUSE_URL: 'redis://x:1' })).toThrow(
      'ROUNDHOUSE_URL must be an http(s) URL',
    );
  });
});

describe('loadServerConfig', () => {
  test('--port acts as PORT, so that the default PUBLIC_URL follows it', () => {
    const { config } = loadServerConfig({ port: 9123 }, { PORT: '8000' });
    expect(config.port).toBe(9123);
    expect(config.publicUrl).toBe('http://localhost:9123');
  });

  test('says which secrets were generated', () => {
    expect(loadServerConfig({}, {}).generated).toEqual({ operatorToken: true, tokenSecret: true });
    const set = loadServerConfig({}, { OPERATOR_TOKEN: 't', TOKEN_SECRET: 's' });
    expect(set.generated).toEqual({ operatorToken: false, tokenSecret: false });
    expect(set.config.operatorToken).toBe('t');
  });
});
