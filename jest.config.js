// Unit tests live beside the code (src/, named *.test.ts); integration tests in test/.
const common = {
  testEnvironment: 'node',
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
};

module.exports = {
  projects: [
    {
      ...common,
      displayName: 'wasm',
      roots: ['<rootDir>/src', '<rootDir>/test'],
      setupFilesAfterEnv: ['<rootDir>/test/setup/backend.ts'],
    },
    {
      // The client side again on TensorFlow.js's CPU backend, which browsers fall back to without WASM:
      // the ops, the interpreter, the codec, the data and the client must answer as they do on WASM.
      ...common,
      displayName: 'cpu',
      roots: [
        '<rootDir>/src/compute',
        '<rootDir>/src/codec',
        '<rootDir>/src/data',
        '<rootDir>/src/client',
        '<rootDir>/src/runner',
        '<rootDir>/src/stateful',
      ],
      testPathIgnorePatterns: ['/src/compute/backend\\.test\\.ts$'],
      setupFilesAfterEnv: ['<rootDir>/test/setup/cpu-backend.ts'],
    },
  ],
  // Sized for a loaded 2-core machine, where an integration test can take three times as long as on a quiet
  // one. A test whose own waits are longer sets its timeout above them, so that the wait fails first and
  // says what it waited for; a timed-out test keeps running in the background (jest cannot stop it) and
  // must not fail the next test file (stop background loops in afterAll before closing what they use).
  testTimeout: 180_000,
  // Two test files at a time, whatever the core count (jest's default on 2 cores is one): most integration
  // tests wait on processes, timers and Redis more than they compute. Measured on 2 cores: 642 s against
  // 1001 s for the whole suite, every file passing both ways.
  maxWorkers: 2,
};
