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

/** The request options hoopctl sends: a subset of fetch's `RequestInit`. */
export interface HttpRequestInit {
  method?: string;
  headers?: Readonly<Record<string, string>>;
  body?: string;
  signal?: AbortSignal;
  /** As fetch: `follow` (default), `manual` (the 3xx answer itself) or `error`. */
  redirect?: 'follow' | 'manual' | 'error';
}

/** The parts of an answer hoopctl reads: a subset of fetch's `Response`, so a `Response` is one. */
export interface HttpResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly statusText: string;
  /** The URL that answered, after redirects. */
  readonly url: string;
  readonly headers: HttpHeaders;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/** Header names in lower case; repeated headers joined with `, ` (as fetch's `Headers.get`). */
export interface HttpHeaders {
  get(name: string): string | null;
  forEach(callback: (value: string, name: string) => void): void;
}

/** An HTTP client shaped like fetch: `globalThis.fetch` is one, and so is `createHttpFetch()`. */
export type HttpFetch = (url: string | URL, init?: HttpRequestInit) => Promise<HttpResponse>;

/**
 * hoopctl's HTTP client: HTTP/1.1 through node:http and node:https, trusting the PEM
 * certificates in `ca` on top of the system's roots when given (a gateway or an issuer behind
 * a private CA).
 *
 * Not Node's own fetch, and not its `Headers`, `Request` or `Response` either: touching any of
 * those globals loads undici (~30 ms of a short command on a 2-core machine), and fetch's
 * WebAssembly HTTP parser is compiled on the first request and waited for when the process
 * exits (measured 378 ms for three requests with fetch against 178 ms with node:http, in a
 * bare `node` process). fetch also cannot take a CA per call without undici's Agent, which
 * Node does not export.
 *
 * It covers what hoopctl sends: a method, string headers, a string body, an abort signal, and
 * redirects followed as fetch follows them (303, and 301/302 after a POST, become a GET), or
 * handed back (`redirect: 'manual'`, the 3xx response itself) or refused (`'error'`).
 */
export function createHttpFetch(ca?: string): HttpFetch {
  // A custom `ca` replaces Node's bundled roots, so list them again.
  const agent = ca === undefined ? undefined : new https.Agent({ ca: [...tls.rootCertificates, ca], keepAlive: false });
  const send = (url: URL, method: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal | undefined, redirect: HttpRequestInit['redirect'], redirects: number): Promise<HttpResponse> =>
    new Promise<HttpResponse>((resolve, reject) => {
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
        res.on('end', () => resolve(answer(status, res.statusMessage ?? '', url.href, res.headers, Buffer.concat(chunks).toString('utf8'))));
      });
      request.on('error', (err) => reject(signal?.aborted ? err : fetchFailed(err)));
      request.end(body);
    });
  return async (input, init = {}) => {
    const url = new URL(input);
    return send(url, (init.method ?? 'GET').toUpperCase(), { ...init.headers }, init.body, init.signal, init.redirect ?? 'follow', 0);
  };
}

/** A whole answer, already read. */
function answer(status: number, statusText: string, url: string, raw: http.IncomingHttpHeaders, body: string): HttpResponse {
  const headers = new Map<string, string>();
  for (const [name, value] of Object.entries(raw)) if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  return {
    status,
    ok: status >= 200 && status < 300,
    statusText,
    url,
    headers: {
      get: (name) => headers.get(name.toLowerCase()) ?? null,
      forEach: (callback) => headers.forEach((value, name) => callback(value, name)),
    },
    text: async () => body,
    json: async () => JSON.parse(body) as unknown,
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
