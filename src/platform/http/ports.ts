import type { IncomingMessage, Server, ServerResponse } from 'node:http';
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
 * Requests that Node answers itself never reach Express; they still get the envelope. Node would otherwise
 * answer a bare 400 or 431 to what its parser refuses (oversized headers or URL, malformed request lines), a
 * bare 408 to headers that never finish, a bare 417 to an `Expect` it does not know, a bare 400 to an HTTP/1.1
 * request without Host (refused by the app instead: refuseMissingHost), and nothing at all to CONNECT.
 */
export function answerParserErrorsWithEnvelope(server: Server): void {
  (server as Server & { requireHostHeader: boolean }).requireHostHeader = false;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) return socket.destroy();
    if (error.code === 'HPE_HEADER_OVERFLOW') {
      return socket.end(rawAnswer(431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE', 'the request headers are too large'));
    }
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      return socket.end(rawAnswer(408, 'Request Timeout', 'INVALID_REQUEST', 'the request did not arrive in time'));
    }
    socket.end(rawAnswer(400, 'Bad Request', 'INVALID_REQUEST', 'the request is malformed'));
  });
  server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    const body = JSON.stringify(envelope('INVALID_REQUEST', 'the only expectation supported is Expect: 100-continue'));
    response.writeHead(417, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    response.end(body);
  });
  // A proxy's tunnel: no route of this service; answered as any unknown route, then closed.
  server.on('connect', (_request: IncomingMessage, socket: Duplex) => {
    socket.end(rawAnswer(404, 'Not Found', 'NOT_FOUND', 'no such resource'));
  });
}

/** Refuses an HTTP/1.1 request without Host, as HTTP requires, in the envelope (Node's own check is off). */
export function refuseMissingHost(request: IncomingMessage, response: ServerResponse, next: () => void): void {
  if (request.httpVersion !== '1.1' || request.headers.host !== undefined) return next();
  const body = JSON.stringify(envelope('INVALID_REQUEST', 'the request has no Host header'));
  response.writeHead(400, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

function rawAnswer(status: number, reason: string, code: string, message: string): string {
  const body = JSON.stringify(envelope(code, message));
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
