import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayClient } from '../../src/client/gateway-client.js';
import { freePort } from '../../src/dev/free-port.js';
import type { HoopError } from '../../src/errors.js';

/** A real HTTP server answering every request with the status and body a test sets. */
let server: http.Server;
let baseUrl: string;
let answer: { status: number; body: string; delayMs?: number } = { status: 200, body: '{}' };
let seen: { method?: string; url?: string; auth?: string; body?: string } = {};

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen = { method: req.method, url: req.url, auth: req.headers.authorization, body };
      setTimeout(() => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body), answer.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const apiError = (code: string, message: string, hint?: string) => JSON.stringify({ error: { code, message, hint } });

describe('GatewayClient: transport', () => {
  it.each(['http://gateway.example.com', 'http://10.0.0.5:8080', 'http://0.0.0.0:8080'])(
    'refuses to send a bearer token to %s over plain HTTP (regression: tokens sent to http:// gateways on any host)',
    async (url) => {
      const sent: string[] = [];
      const fetchSpy = (async (input: string | URL | Request) => {
        sent.push(String(input));
        return new Response('{}', { status: 200 });
      }) as typeof fetch;
      const err = (() => {
        try {
          new GatewayClient({ baseUrl: url, token: 't', fetch: fetchSpy });
        } catch (e) {
          return e as HoopError;
        }
        return undefined;
      })();
      expect(err).toMatchObject({ kind: 'usage', code: 'plain_http_gateway' });
      expect(err!.hint).toContain('--dangerously-allow-plain-http');
      expect(sent).toEqual([]);
      const allowed = new GatewayClient({ baseUrl: url, token: 't', fetch: fetchSpy, allowPlainHttp: true });
      await allowed.listConnections().catch(() => undefined);
      expect(sent).toHaveLength(1);
    },
  );

  it.each(['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080', 'https://gateway.example.com'])('talks to %s', (url) => {
    expect(() => new GatewayClient({ baseUrl: url, token: 't' })).not.toThrow();
  });
});

describe('GatewayClient', () => {
  it('sends the bearer token and JSON body, and returns the answer', async () => {
    answer = { status: 200, body: JSON.stringify({ connections: [{ name: 'orders-db' }] }) };
    const client = new GatewayClient({ baseUrl, token: 'tok' });
    expect(await client.listConnections()).toEqual([{ name: 'orders-db' }]);
    expect(seen).toMatchObject({ method: 'GET', url: '/api/v1/connections', auth: 'Bearer tok' });

    answer = { status: 200, body: JSON.stringify({ session: { id: 's 1' } }) };
    await client.endSession('s 1');
    expect(seen).toMatchObject({ method: 'DELETE', url: '/api/v1/sessions/s%201' });
  });

  it.each([
    [401, apiError('token_expired', 'token expired', 'log in'), 'auth', 'token_expired', 'get a fresh token: set HOOPCTL_TOKEN'],
    [403, apiError('not_in_group', 'you are not in group dba', 'ask for access'), 'denied', 'not_in_group', 'ask for access'],
    [404, apiError('unknown_connection', 'no connection "x"'), 'not_found', 'unknown_connection', undefined],
    [400, apiError('bad_duration', 'duration too long', 'at most 1h'), 'usage', 'bad_duration', 'at most 1h'],
    [409, apiError('review_decided', 'review rev_1 is already approved by bob'), 'conflict', 'review_decided', undefined],
    [500, apiError('internal', 'boom'), 'internal', 'internal', undefined],
    [502, '<html>bad gateway</html>', 'network', 'http_502', expect.stringContaining('try again')],
    [418, 'teapot', 'protocol', 'http_418', undefined],
  ])('maps HTTP %i to a HoopError', async (status, body, kind, code, hint) => {
    answer = { status, body };
    const err = (await new GatewayClient({ baseUrl, token: 't' }).listSessions().catch((e: unknown) => e)) as HoopError;
    expect(err).toMatchObject({ name: 'HoopError', kind, code });
    expect(err.hint).toEqual(hint);
  });

  it('names the gateway URL and the flag when the gateway is unreachable', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const err = (await new GatewayClient({ baseUrl: closed, token: 't' }).listSessions().catch((e: unknown) => e)) as HoopError;
    expect(err).toMatchObject({ kind: 'network', code: 'gateway_unreachable' });
    expect(err.message).toContain(closed);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.hint).toContain('--gateway');
    expect(err.hint).toContain('HOOPCTL_GATEWAY');
  });

  it('gives up after its timeout instead of hanging', async () => {
    answer = { status: 200, body: '{"sessions":[]}', delayMs: 1000 };
    const err = (await new GatewayClient({ baseUrl, token: 't', timeoutMs: 100 }).listSessions().catch((e: unknown) => e)) as HoopError;
    expect(err).toMatchObject({ kind: 'network', code: 'gateway_timeout' });
  });

  it('is a protocol error when a success answer has the wrong shape', async () => {
    answer = { status: 200, body: '{"nope":1}' };
    await expect(new GatewayClient({ baseUrl, token: 't' }).listConnections()).rejects.toMatchObject({ kind: 'protocol', code: 'bad_gateway_response' });
  });
});
