import { initBackend } from '../../src/compute/backend';

// Every test file runs on the backend the product picks (WASM here), never tfjs's silent CPU default.
beforeAll(() => initBackend());
