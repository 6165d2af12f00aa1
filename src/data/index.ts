/**
 * Client data: examples per client, batching into sequences, and the clients CSV format. Browser-safe; the
 * Node-only digits loader is deliberately not re-exported here (import `./digits` directly).
 */
export * from './client-examples';
export * from './batches';
export * from './clients-csv';
export * from './seeded';
