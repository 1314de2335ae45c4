import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { HoopError } from '../errors.js';

/** Redirects followed before giving up, as fetch does (it allows 20). */
const MAX_REDIRECTS = 20;

/** A failure shaped like undici's, so callers that read `err.cause.code` or the message keep working. */
function fetchFailed(cause: Error): TypeError {
  return Object.assign(new TypeError('fetch failed'), { cause });
}

/**
 * hoopctl's `fetch`: HTTP/1.1 through node:http and node:https, trusting the PEM certificates in
 * `ca` on top of the system's roots when given (a gateway or an issuer behind a private CA).
 *
 * Not Node's own fetch, for two reasons. It cannot take a CA per call without undici's Agent,
 * which Node does not export. And it is slow to start: its HTTP parser is WebAssembly, compiled
 * on the first request and waited for when the process exits, which added about 200 ms to every
 * short command (`hoopctl connect -- psql …` in CI: three requests; measured 378 ms for three
 * requests with fetch against 178 ms with this one, in a bare `node` process).
 *
 * It covers what hoopctl sends: a method, string headers, a string body, an abort signal, and
 * redirects followed as fetch follows them (303, and 301/302 after a POST, become a GET), or
 * handed back (`redirect: 'manual'`, the 3xx response itself) or refused (`'error'`).
 */
export function createHttpFetch(ca?: string): typeof globalThis.fetch {
  // A custom `ca` replaces Node's bundled roots, so list them again.
  const agent = ca === undefined ? undefined : new https.Agent({ ca: [...tls.rootCertificates, ca], keepAlive: false });
  const send = (url: URL, method: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal | undefined, redirect: RequestInit['redirect'], redirects: number): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      const secure = url.protocol === 'https:';
      if (!secure && url.protocol !== 'http:') {
        reject(fetchFailed(new Error(`unsupported URL scheme ${url.protocol}`)));
        return;
      }
      const request = (secure ? https : http).request(url, { method, headers, agent: secure ? agent : undefined, signal }, (res) => {
        const status = res.statusCode ?? 500;
        const location = res.headers.location;
        if (location !== undefined && redirect !== 'manual' && [301, 302, 303, 307, 308].includes(status)) {
          res.resume();
          if (redirect === 'error') {
            reject(fetchFailed(new Error(`redirected to ${location} with redirect: "error"`)));
            return;
          }
          if (redirects >= MAX_REDIRECTS) {
            reject(fetchFailed(new Error(`more than ${MAX_REDIRECTS} redirects`)));
            return;
          }
          const asGet = status === 303 || ((status === 301 || status === 302) && method === 'POST');
          const next = new URL(location, url);
          const nextHeaders = { ...headers };
          if (asGet) for (const name of Object.keys(nextHeaders)) if (/^content-/i.test(name)) delete nextHeaders[name];
          // Credentials stay with the origin they were meant for.
          if (next.origin !== url.origin) for (const name of Object.keys(nextHeaders)) if (/^(authorization|cookie)$/i.test(name)) delete nextHeaders[name];
          send(next, asGet ? 'GET' : method, nextHeaders, asGet ? undefined : body, signal, redirect, redirects + 1).then(resolve, reject);
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          const nullBody = status === 204 || status === 304 || method === 'HEAD';
          const response = new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage, headers: responseHeaders });
          Object.defineProperty(response, 'url', { value: url.href });
          resolve(response);
        });
      });
      request.on('error', (err) => reject(signal?.aborted ? err : fetchFailed(err)));
      request.end(body);
    });
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const body = init.body === undefined || init.body === null ? undefined : String(init.body);
    return send(url, (init.method ?? 'GET').toUpperCase(), headers, body, init.signal ?? undefined, init.redirect ?? 'follow', 0);
  };
}

/** The PEM text of the CA file a login or HOOPCTL_CA names; undefined when none is named. */
export function readCaFile(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new HoopError('usage', 'ca_file_unreadable', `cannot read the CA file ${file}: ${(err as Error).message}`, {
      hint: 'log in again with --ca FILE (or set HOOPCTL_CA) naming the CA that signed the gateway’s certificate',
      cause: err,
    });
  }
}
