import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { HoopError } from '../errors.js';

/**
 * A `fetch` that also trusts the PEM certificates in `ca` (on top of the system's roots), for a
 * gateway or an issuer behind a private CA. Node's own fetch cannot take a CA per call without
 * undici's Agent, which Node does not export; this one speaks HTTP/1.1 through node:https.
 * It covers what hoopctl sends: a method, string headers, a string body and an abort signal.
 */
export function createCaFetch(ca: string | undefined): typeof globalThis.fetch {
  if (ca === undefined) return globalThis.fetch;
  // A custom `ca` replaces Node's bundled roots, so list them again.
  const agent = new https.Agent({ ca: [...tls.rootCertificates, ca], keepAlive: false });
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const headers = new Headers(init.headers);
    const body = init.body === undefined || init.body === null ? undefined : String(init.body);
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const request = transport.request(
        url,
        { method: init.method ?? 'GET', headers: Object.fromEntries(headers.entries()), agent: url.protocol === 'https:' ? agent : undefined, signal: init.signal ?? undefined },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const responseHeaders = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
            }
            const status = res.statusCode ?? 500;
            const nullBody = status === 204 || status === 304;
            resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage, headers: responseHeaders }));
          });
        },
      );
      // Shaped like undici's failure so callers that read `err.cause.code` keep working.
      request.on('error', (err) => reject(init.signal?.aborted ? err : Object.assign(new TypeError('fetch failed'), { cause: err })));
      request.end(body);
    });
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
