import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import type { HttpFetch, HttpResponse } from './http-fetch.js';

/**
 * msal-node's `system.networkClient`, making its device code flow speak RFC 8628 to any
 * standard issuer (and still Entra ID, which accepts the standard spellings too):
 *
 *   msal-node 7 does                                   this client sends / answers instead
 *   POST {token_endpoint /token→/devicecode}           POST device_authorization_endpoint (from discovery)
 *   answer without `interval` → polls in a tight loop  `interval: 5` added (RFC 8628 §3.2 default)
 *   grant_type=device_code                             grant_type=urn:ietf:params:oauth:grant-type:device_code
 *   throws on `slow_down`                              waits 5 s more from then on (§3.5), reports authorization_pending
 *   TLS failure → endpoints_resolution_error           the socket error is kept in `lastFailure` for the caller
 *
 *   msal ──GET discovery──▶ client ──▶ issuer          (remembers token → device endpoint)
 *   msal ──POST …/devicecode──▶ client ──POST device_authorization_endpoint──▶ issuer
 *   msal ──POST token (poll)──▶ client ──(paced)──▶ issuer
 */
export class Rfc8628NetworkClient implements INetworkModule {
  /** The last transport failure (DNS, refused, TLS trust), for error messages msal flattens. */
  lastFailure: Error | undefined;
  /** Device endpoint by the URL msal derives from `token_endpoint`. */
  private readonly deviceEndpoints = new Map<string, string>();
  /** Extra wait per device code after `slow_down`, in ms. */
  private readonly slowDown = new Map<string, number>();

  constructor(
    private readonly fetchImpl: HttpFetch,
    private readonly options: { defaultIntervalSec?: number; slowDownStepMs?: number; sleep?: (ms: number) => Promise<void> } = {},
  ) {}

  async sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    const response = await this.send<Record<string, unknown>>('GET', url, options, timeout);
    const body = response.body;
    if (response.status === 200 && typeof body?.token_endpoint === 'string' && typeof body.device_authorization_endpoint === 'string') {
      this.deviceEndpoints.set(withoutQuery(body.token_endpoint.replace('/token', '/devicecode')), body.device_authorization_endpoint);
    }
    return response as NetworkResponse<T>;
  }

  async sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    const form = new URLSearchParams(options?.body ?? '');
    const grantType = form.get('grant_type');
    const deviceEndpoint = this.deviceEndpoints.get(withoutQuery(url));
    if (deviceEndpoint !== undefined) return this.deviceAuthorization<T>(deviceEndpoint, url, options);
    if (url.endsWith('/devicecode') || withoutQuery(url).endsWith('/devicecode')) return this.deviceAuthorization<T>(url, url, options);
    if (grantType !== 'device_code') return (await this.send('POST', url, options)) as NetworkResponse<T>;

    form.set('grant_type', 'urn:ietf:params:oauth:grant-type:device_code');
    const deviceCode = form.get('device_code') ?? '';
    const extra = this.slowDown.get(deviceCode) ?? 0;
    if (extra > 0) await this.sleep(extra);
    const response = await this.send<Record<string, unknown>>('POST', url, { ...options, body: form.toString() });
    if (response.body?.error === 'slow_down') {
      const step = this.options.slowDownStepMs ?? 5000;
      this.slowDown.set(deviceCode, extra + step);
      await this.sleep(step);
      return { ...response, body: { error: 'authorization_pending', error_description: 'slow_down: waiting longer between polls' } } as NetworkResponse<T>;
    }
    if (response.body?.error !== 'authorization_pending') this.slowDown.delete(deviceCode);
    return response as NetworkResponse<T>;
  }

  private async deviceAuthorization<T>(endpoint: string, msalUrl: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    const query = msalUrl.includes('?') ? msalUrl.slice(msalUrl.indexOf('?')) : '';
    const response = await this.send<Record<string, unknown>>('POST', endpoint + (endpoint.includes('?') ? '' : query), options);
    const body = response.body;
    if (response.status === 200 && body && typeof body.interval !== 'number') {
      return { ...response, body: { ...body, interval: this.options.defaultIntervalSec ?? 5 } } as NetworkResponse<T>;
    }
    return response as NetworkResponse<T>;
  }

  private sleep(ms: number): Promise<void> {
    return this.options.sleep ? this.options.sleep(ms) : new Promise((resolve) => setTimeout(resolve, ms));
  }

  private async send<T>(method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions, timeoutMs?: number): Promise<NetworkResponse<T>> {
    let response: HttpResponse;
    let text: string;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers: options?.headers,
        body: method === 'POST' ? (options?.body ?? '') : undefined,
        signal: AbortSignal.timeout(timeoutMs ?? 30_000),
      });
      text = await response.text();
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      this.lastFailure = cause instanceof Error ? cause : (err as Error);
      throw err;
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => (headers[name] = value));
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      body = { error: 'invalid_response', error_description: `HTTP ${response.status} from ${url} is not JSON` };
    }
    return { headers, body: body as T, status: response.status };
  }
}

function withoutQuery(url: string): string {
  const i = url.indexOf('?');
  return i === -1 ? url : url.slice(0, i);
}
