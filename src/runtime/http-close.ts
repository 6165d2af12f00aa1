import type * as http from 'node:http';
import type { Socket } from 'node:net';

/**
 * Closes an HTTP server quickly: stops accepting connections, lets requests in flight finish for up to
 * `graceMs`, and meanwhile closes every connection that has no request in flight as soon as it has none:
 * keep-alive connections that went idle, and connections a client opened but has sent nothing on (a fetch
 * aborted before its request went out). Node's own `closeIdleConnections` leaves the latter open until
 * the client gives up, which held a stopping server for seconds. What is left after `graceMs` is cut.
 * Call it once the server was made; it tracks connections from then on.
 */
export function fastClose(
  server: http.Server,
  options: { readonly sweepMs?: number } = {},
): (graceMs: number) => Promise<void> {
  const sockets = new Set<Socket>();
  const busy = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      busy.delete(socket);
    });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    busy.add(socket);
    res.once('close', () => busy.delete(socket));
  });
  const sweep = (): void => {
    for (const socket of sockets) if (!busy.has(socket)) socket.destroy();
  };
  return (graceMs: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      timer.unref();
      const sweeper = setInterval(sweep, options.sweepMs ?? 50);
      sweeper.unref();
      server.close(() => {
        clearTimeout(timer);
        clearInterval(sweeper);
        resolve();
      });
      sweep();
    });
}
