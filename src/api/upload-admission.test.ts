import { EventEmitter } from 'node:events';
import type { Request, Response } from 'express';
import { UploadAdmission } from './upload-admission';

const ref = { plan: 'p', round: 1, attempt: 1 };

/** A request with a Content-Length (or none), and a response that records headers and can close. */
function exchange(length?: number) {
  const req = {
    get: (h: string) => (h === 'content-length' && length !== undefined ? String(length) : undefined),
  };
  const headers: Record<string, string> = {};
  const res = Object.assign(new EventEmitter(), { set: (k: string, v: string) => void (headers[k] = v) });
  return { req: req as unknown as Request, res: res as unknown as Response & EventEmitter, headers };
}

function admission(pending = 0, cap = 100) {
  return new UploadAdmission({
    store: { pendingUploads: async () => pending },
    maxPending: 4,
    maxInflightBytes: cap,
  });
}

test('a round whose pending uploads reach the cap refuses, with Retry-After and Connection: close', async () => {
  const x = exchange(10);
  await expect(admission(4).admit(ref, x.req, x.res)).rejects.toMatchObject({ code: 'BUSY', status: 503 });
  expect(x.headers).toEqual({ 'Retry-After': '2', Connection: 'close' });
  await expect(admission(3).admit(ref, exchange(10).req, exchange(10).res)).resolves.toBeUndefined();
});

test('bytes are held from Content-Length, as a body arrives and once inflated, until the response closes', async () => {
  const a = admission(0, 100);
  const one = exchange(60);
  await a.admit(ref, one.req, one.res);
  expect(a.inFlight).toBe(60);
  // 60 + 50 > 100 while another upload holds bytes.
  const two = exchange(50);
  await expect(a.admit(ref, two.req, two.res)).rejects.toMatchObject({ code: 'BUSY' });
  two.res.emit('close');
  expect(a.inFlight).toBe(60);

  // Chunked: nothing up front, then the bytes as they come; past the cap the meter stops it.
  const chunked = exchange();
  await a.admit(ref, chunked.req, chunked.res);
  expect(a.meter(chunked.req, chunked.res, 30)).toBeUndefined();
  expect(a.inFlight).toBe(90);
  expect(a.meter(chunked.req, chunked.res, 41)).toMatchObject({ code: 'BUSY' });
  expect(chunked.headers.Connection).toBe('close');
  chunked.res.emit('close');

  // An inflated body is held at its inflated size, even past the cap: it is in memory already.
  a.account(one.req, 500);
  expect(a.inFlight).toBe(500);
  one.res.emit('close');
  expect(a.inFlight).toBe(0);
});

test('an upload alone is admitted whatever its size, so that one larger than the cap can pass', async () => {
  const a = admission(0, 100);
  const big = exchange(1000);
  await a.admit(ref, big.req, big.res);
  expect(a.inFlight).toBe(1000);
  big.res.emit('close');
  expect(a.inFlight).toBe(0);
});

test('a body inflated after its client went away holds nothing: the count cannot leak', async () => {
  const a = admission(0, 100);
  const gz = exchange(40);
  await a.admit(ref, gz.req, gz.res);
  // The client disconnects after its last byte; the server finishes inflating afterwards.
  gz.res.emit('close');
  a.account(gz.req, 400);
  expect(a.inFlight).toBe(0);
  // So later uploads are still admitted.
  const next = exchange(90);
  await expect(a.admit(ref, next.req, next.res)).resolves.toBeUndefined();
});

test('a pending count read ahead decides admission; a failed one is thrown by admit, and only there', async () => {
  let reads = 0;
  const failing = new UploadAdmission({
    store: {
      pendingUploads: async () => {
        reads += 1;
        throw new Error('redis down');
      },
    },
    maxPending: 4,
    maxInflightBytes: 100,
  });
  // Read ahead and never admitted (an earlier check refused the upload): no unhandled rejection.
  failing.pending(ref);
  const x = exchange(10);
  await expect(failing.admit(ref, x.req, x.res, failing.pending(ref))).rejects.toThrow('redis down');
  expect(reads).toBe(2);

  const a = admission(4);
  const y = exchange(10);
  await expect(a.admit(ref, y.req, y.res, a.pending(ref))).rejects.toMatchObject({ code: 'BUSY' });
  const other = { ...ref, attempt: 2 };
  await expect(a.admit(ref, y.req, y.res, a.pending(other))).rejects.toThrow('another attempt');
});
