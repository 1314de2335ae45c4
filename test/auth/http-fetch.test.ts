import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHttpFetch } from '../../src/auth/http-fetch.js';
import { freePort } from '../../src/dev/free-port.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real HTTP server that records what it got and answers by path. */
async function startServer(): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const [route, arg] = req.url!.split('?');
      if (route === '/json') {
        res.writeHead(201, { 'content-type': 'application/json', 'x-request-id': 'r1' }).end(JSON.stringify({ got: body }));
      } else if (route === '/cookies') {
        res.writeHead(200, { 'X-Request-Id': 'r2', 'set-cookie': ['a=1', 'b=2'] }).end('{}');
      } else if (route === '/empty') {
        res.writeHead(204).end();
      } else if (route === '/redirect') {
        res.writeHead(Number(arg), { location: '/json' }).end('moved');
      } else if (route === '/away') {
        res.writeHead(307, { location: decodeURIComponent(arg!) }).end();
      } else if (route === '/loop') {
        res.writeHead(302, { location: '/loop' }).end();
      } else if (route === '/slow') {
        setTimeout(() => res.end('late'), 5_000).unref();
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no such thing');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

describe('createHttpFetch (hoopctl’s fetch over node:http)', () => {
  let a: Awaited<ReturnType<typeof startServer>>;
  let b: Awaited<ReturnType<typeof startServer>>;
  const fetch = createHttpFetch();

  beforeAll(async () => {
    a = await startServer();
    b = await startServer();
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  it('sends method, headers and body, and gives a Response with status, headers and JSON', async () => {
    const res = await fetch(`${a.url}/json`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer t' }, body: '{"x":1}' });
    expect(res.status).toBe(201);
    expect(res.ok).toBe(true);
    expect(res.headers.get('x-request-id')).toBe('r1');
    expect(await res.json()).toEqual({ got: '{"x":1}' });
    const got = a.seen.at(-1)!;
    expect(got).toMatchObject({ method: 'POST', url: '/json', body: '{"x":1}' });
    expect(got.headers.authorization).toBe('Bearer t');
  });

  it('gives 204 an empty body and 404 its text', async () => {
    const empty = await fetch(`${a.url}/empty`, { method: 'DELETE' });
    expect(empty.status).toBe(204);
    expect(await empty.text()).toBe('');
    const missing = await fetch(`${a.url}/nothing`);
    expect(missing.ok).toBe(false);
    expect(await missing.text()).toBe('no such thing');
  });

  it('reads header names in any case and joins a repeated header as fetch does', async () => {
    const res = await fetch(`${a.url}/cookies`);
    expect(res.headers.get('X-Request-Id')).toBe('r2');
    expect(res.headers.get('set-cookie')).toBe('a=1, b=2');
    expect(res.headers.get('x-absent')).toBeNull();
    const seen: [string, string][] = [];
    res.headers.forEach((value, name) => seen.push([name, value]));
    expect(seen).toEqual(expect.arrayContaining([['x-request-id', 'r2'], ['set-cookie', 'a=1, b=2']]));
    expect(res.url).toBe(`${a.url}/cookies`);
    expect(res.statusText).toBe('OK');
  });

  it.each([
    [303, 'GET', ''],
    [302, 'GET', ''],
    [301, 'GET', ''],
    [307, 'POST', 'payload'],
    [308, 'POST', 'payload'],
  ])('follows a %i after a POST as fetch does: %s with body "%s"', async (status, method, body) => {
    const res = await fetch(`${a.url}/redirect?${status}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'payload' });
    expect(res.status).toBe(201);
    expect(res.url).toBe(`${a.url}/json`);
    const got = a.seen.at(-1)!;
    expect(got).toMatchObject({ method, url: '/json', body });
    if (method === 'GET') expect(got.headers['content-type']).toBeUndefined();
  });

  it('hands a redirect back with redirect: "manual" and refuses it with "error"', async () => {
    const manual = await fetch(`${a.url}/redirect?302`, { redirect: 'manual' });
    expect(manual.status).toBe(302);
    expect(manual.headers.get('location')).toBe('/json');
    await expect(fetch(`${a.url}/redirect?302`, { redirect: 'error' })).rejects.toMatchObject({ name: 'TypeError', message: 'fetch failed' });
  });

  it('does not carry the Authorization header to another origin on a redirect', async () => {
    const res = await fetch(`${a.url}/away?${encodeURIComponent(`${b.url}/json`)}`, { headers: { authorization: 'Bearer secret' } });
    expect(res.status).toBe(201);
    expect(b.seen.at(-1)!.headers.authorization).toBeUndefined();
  });

  it('gives up on a redirect loop with a TypeError, as fetch does', async () => {
    await expect(fetch(`${a.url}/loop`)).rejects.toMatchObject({ name: 'TypeError', message: 'fetch failed', cause: { message: 'more than 20 redirects' } });
  });

  it('fails like undici: TypeError "fetch failed" with the socket error as cause', async () => {
    const port = await freePort();
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toMatchObject({ name: 'TypeError', message: 'fetch failed', cause: { code: 'ECONNREFUSED' } });
  });

  it('stops at its abort signal with the signal’s reason', async () => {
    await expect(fetch(`${a.url}/slow`, { signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('never calls Node’s own fetch (its first request costs ~200 ms of a short command)', async () => {
    const spy = vi.spyOn(globalThis, 'fetch');
    try {
      await createHttpFetch()(`${a.url}/json`);
      await createHttpFetch('not used for http')(`${a.url}/json`);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});
