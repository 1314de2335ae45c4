import { describe, expect, it } from 'vitest';
import { Rfc8628NetworkClient } from '../../src/auth/rfc8628-network-client.js';

/** A scripted issuer: each request is recorded, answers come from `answer`. */
function fakeIssuer(answer: (method: string, url: string, body: URLSearchParams) => [number, unknown]) {
  const seen: { method: string; url: string; body: URLSearchParams }[] = [];
  const fetchImpl = (async (input: string | URL | Request, init?: RequestInit) => {
    const method = init?.method ?? 'GET';
    const url = String(input);
    const body = new URLSearchParams(typeof init?.body === 'string' ? init.body : '');
    seen.push({ method, url, body });
    const [status, json] = answer(method, url, body);
    return new Response(JSON.stringify(json), { status, headers: { 'content-type': 'application/json' } });
  }) as typeof globalThis.fetch;
  return { fetchImpl, seen };
}

const DISCOVERY = {
  issuer: 'https://idp.test',
  token_endpoint: 'https://idp.test/token',
  device_authorization_endpoint: 'https://idp.test/device/auth',
};

describe('Rfc8628NetworkClient: msal-node device code flow → RFC 8628', () => {
  it('sends msal’s derived /devicecode request to the discovered device_authorization_endpoint and adds the default interval', async () => {
    const issuer = fakeIssuer((_m, url) =>
      url.endsWith('/.well-known/openid-configuration') ? [200, DISCOVERY] : [200, { device_code: 'dc', user_code: 'ABCD-EFGH', verification_uri: 'https://idp.test/device', expires_in: 600 }],
    );
    const client = new Rfc8628NetworkClient(issuer.fetchImpl);
    await client.sendGetRequestAsync('https://idp.test/.well-known/openid-configuration');
    const answer = await client.sendPostRequestAsync<{ interval: number }>('https://idp.test/devicecode', { body: 'client_id=hoopctl&scope=openid' });
    expect(issuer.seen[1]).toMatchObject({ method: 'POST', url: 'https://idp.test/device/auth' });
    expect(issuer.seen[1]!.body.get('client_id')).toBe('hoopctl');
    expect(answer.body.interval).toBe(5);
  });

  it('keeps an Entra-style endpoint layout as it is, and an interval the issuer sent', async () => {
    const entra = { token_endpoint: 'https://login.test/t1/oauth2/v2.0/token', device_authorization_endpoint: 'https://login.test/t1/oauth2/v2.0/devicecode' };
    const issuer = fakeIssuer((_m, url) => (url.includes('well-known') ? [200, entra] : [200, { device_code: 'dc', user_code: 'X', verification_uri: 'v', expires_in: 900, interval: 2 }]));
    const client = new Rfc8628NetworkClient(issuer.fetchImpl);
    await client.sendGetRequestAsync('https://login.test/t1/v2.0/.well-known/openid-configuration');
    const answer = await client.sendPostRequestAsync<{ interval: number }>('https://login.test/t1/oauth2/v2.0/devicecode', { body: '' });
    expect(issuer.seen[1]!.url).toBe('https://login.test/t1/oauth2/v2.0/devicecode');
    expect(answer.body.interval).toBe(2);
  });

  it('polls with the registered grant type, and answers slow_down by waiting 5 s more from then on', async () => {
    const answers: [number, unknown][] = [
      [400, { error: 'slow_down' }],
      [400, { error: 'authorization_pending' }],
      [200, { access_token: 'at', token_type: 'Bearer' }],
    ];
    const issuer = fakeIssuer(() => answers.shift()!);
    const slept: number[] = [];
    const client = new Rfc8628NetworkClient(issuer.fetchImpl, { sleep: async (ms) => void slept.push(ms) });
    const poll = () => client.sendPostRequestAsync<{ error?: string }>('https://idp.test/token?client-request-id=1', { body: 'grant_type=device_code&device_code=dc&client_id=hoopctl' });
    expect((await poll()).body.error).toBe('authorization_pending'); // msal would throw on slow_down
    expect((await poll()).body.error).toBe('authorization_pending');
    expect((await poll()).status).toBe(200);
    expect(issuer.seen.map((r) => r.body.get('grant_type'))).toEqual(Array(3).fill('urn:ietf:params:oauth:grant-type:device_code'));
    expect(slept).toEqual([5000, 5000, 5000]);
  });

  it('leaves other token requests alone', async () => {
    const issuer = fakeIssuer(() => [200, { access_token: 'at' }]);
    const client = new Rfc8628NetworkClient(issuer.fetchImpl);
    await client.sendPostRequestAsync('https://idp.test/token', { body: 'grant_type=refresh_token&refresh_token=r' });
    expect(issuer.seen[0]!.body.get('grant_type')).toBe('refresh_token');
  });

  it('keeps the socket error msal would flatten into endpoints_resolution_error', async () => {
    const tlsError = Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    const client = new Rfc8628NetworkClient((async () => {
      throw Object.assign(new TypeError('fetch failed'), { cause: tlsError });
    }) as typeof globalThis.fetch);
    await expect(client.sendGetRequestAsync('https://idp.test/.well-known/openid-configuration')).rejects.toThrow('fetch failed');
    expect(client.lastFailure).toBe(tlsError);
  });
});
