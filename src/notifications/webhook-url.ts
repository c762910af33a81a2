import ipaddr from 'ipaddr.js';
import type { ErrorDetail } from '../platform/errors.js';

const MAX_URL_LENGTH = 2048;

/** Only unicast addresses are public; loopback, private, link-local (cloud metadata) and the rest are not. */
export function isPublicAddress(address: string): boolean {
  try {
    const parsed = ipaddr.process(address);
    return parsed.range() === 'unicast';
  } catch {
    return false;
  }
}

/**
 * Why a webhook URL is refused, or undefined: `https` only, no credentials in it, and no host that is a
 * private address or localhost, unless private targets are allowed (tests, local setups), which also allows
 * `http`. Names are checked again where it matters, on each connection (the resolved address).
 */
export function webhookUrlProblem(url: string, allowPrivate: boolean): ErrorDetail | undefined {
  const problem = (message: string) => ({ field: 'url', message });
  if (url.length > MAX_URL_LENGTH) return problem(`must be at most ${MAX_URL_LENGTH} characters`);
  // URL would percent-encode them, but the URL is stored as given (and Postgres refuses a NUL in text).
  if (/[\u0000-\u0020\u007f]/.test(url)) return problem('must not contain spaces or control characters');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return problem('must be an absolute https:// URL');
  }
  const schemes = allowPrivate ? ['https:', 'http:'] : ['https:'];
  if (!schemes.includes(parsed.protocol)) return problem('must be an https:// URL');
  if (parsed.username || parsed.password) return problem('must not carry credentials');
  if (allowPrivate) return undefined;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return problem('must not point at this machine');
  if (ipaddr.isValid(host) && !isPublicAddress(host)) return problem('must not point at a private, loopback or link-local address');
  return undefined;
}
