import { describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import type { HoopError } from '../../src/errors.js';

const ctx = { source: 'gateway.yaml', baseDir: '/etc/hoop', env: { PW: 'x' } };
const tree = (auth: Record<string, unknown>) => ({
  listen: { api: '127.0.0.1:0', ssh: '127.0.0.1:0' },
  auth,
  connections: { db: { type: 'postgres', host: 'h', database: 'd', user: 'u', password: 'env:PW' } },
});
const ENTRA = { issuer: 'https://login.microsoftonline.com/t1/v2.0', audience: 'api://hoop-gateway' };

describe('gateway config: auth.login and issuer claims', () => {
  it('an Entra login block: AAD by default, .default scopes for machines, no known authorities (msal discovers them)', () => {
    const config = parseGatewayConfig(tree({ issuers: [ENTRA], login: { authority: 'https://login.microsoftonline.com/t1/', clientId: 'c1', scopes: ['api://hoop-gateway/session'] } }), ctx);
    expect(config.auth.login).toEqual({
      authority: 'https://login.microsoftonline.com/t1',
      clientId: 'c1',
      scopes: ['api://hoop-gateway/session'],
      protocolMode: 'AAD',
      knownAuthorities: [],
      clientCredentialScopes: ['api://hoop-gateway/.default'],
    });
  });

  it('a standard issuer (OIDC): its host is a known authority, so msal never calls Microsoft’s instance discovery', () => {
    const config = parseGatewayConfig(tree({ issuers: [ENTRA], login: { authority: 'https://idp.example.com:8443/realms/x', clientId: 'c', scopes: ['gateway'], protocolMode: 'OIDC' } }), ctx);
    expect(config.auth.login).toMatchObject({ protocolMode: 'OIDC', knownAuthorities: ['idp.example.com:8443'], clientCredentialScopes: ['gateway'] });
  });

  it('several issuers with claim lists and a group id → name map', () => {
    const config = parseGatewayConfig(
      tree({ issuers: [ENTRA, { issuer: 'https://idp.example.com', audience: ['a', 'b'], userClaim: ['preferred_username', 'azp'], groupsClaim: ['groups', 'roles'], groupsMap: { 'g-1': 'dba' } }] }),
      ctx,
    );
    expect(config.auth.issuers[1]).toEqual({ issuer: 'https://idp.example.com', audience: ['a', 'b'], userClaim: ['preferred_username', 'azp'], groupsClaim: ['groups', 'roles'], groupsMap: { 'g-1': 'dba' } });
    expect(config.auth.login).toBeUndefined();
  });

  it.each([
    ['an http authority', { authority: 'http://idp.test', clientId: 'c', scopes: ['s'] }, 'auth.login.authority: must use https'],
    ['an unknown protocol mode', { authority: 'https://idp.test', clientId: 'c', scopes: ['s'], protocolMode: 'SAML' }, 'auth.login.protocolMode: must be one of AAD, OIDC'],
    ['a missing client id', { authority: 'https://idp.test', scopes: ['s'] }, 'auth.login.clientId: must be a non-empty string'],
    ['a typo', { authority: 'https://idp.test', clientId: 'c', scopes: ['s'], scope: 'x' }, 'auth.login: unknown field "scope"'],
  ])('names the field: %s', (_name, login, message) => {
    let error: HoopError | undefined;
    try {
      parseGatewayConfig(tree({ issuers: [ENTRA], login }), ctx);
    } catch (err) {
      error = err as HoopError;
    }
    expect(error?.message).toContain(`gateway.yaml: ${message}`);
  });
});
