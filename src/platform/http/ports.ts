import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { envelope } from './error-envelope.filter.js';

const INTERNAL = Symbol('internal-port');

/** Marks a request as come in on the internal port (the catalogue API's). */
export function markInternal(request: IncomingMessage): void {
  (request as { [INTERNAL]?: true })[INTERNAL] = true;
}

export function isInternalRequest(request: IncomingMessage): boolean {
  return (request as { [INTERNAL]?: true })[INTERNAL] === true;
}

/**
 * The catalogue API lives under /internal; nothing else does. Compared without case, as Express routes:
 * `/INTERNAL/...` on PORT must not reach the catalogue's routes.
 */
export function isInternalPath(path: string): boolean {
  const lower = path.toLowerCase();
  return lower === '/internal' || lower.startsWith('/internal/');
}

/**
 * Requests that Node's HTTP parser refuses (oversized headers or URL, malformed request lines) never reach
 * Express; they still get the envelope. Node would otherwise answer a bare 400 or 431.
 */
export function answerParserErrorsWithEnvelope(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) return socket.destroy();
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const [status, reason] = tooLarge ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
    const body = JSON.stringify(
      envelope(tooLarge ? 'HEADERS_TOO_LARGE' : 'INVALID_REQUEST', tooLarge ? 'the request headers are too large' : 'the request is malformed'),
    );
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
