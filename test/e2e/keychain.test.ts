import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevOidcIssuer, type DevIssuer } from '../../src/dev/oidc-issuer.js';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { startGateway, type RunningGateway } from '../../src/gateway/gateway.js';
import { HOOPCTL_BIN } from '../helpers/cli-process.js';

/** The programs a headless Secret Service needs (Debian: gnome-keyring, dbus). */
function missingPrograms(): string[] {
  return ['gnome-keyring-daemon', 'dbus-run-session', 'dbus-send'].filter((program) => {
    try {
      execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

const missing = missingPrograms();

/**
 * The keychain path for real: a private D-Bus session with gnome-keyring's Secret Service,
 * unlocked with a throwaway password, and the built hoopctl logging in inside it. The daemon
 * is started by the script and ended by its pid before the session closes.
 */
describe.skipIf(missing.length > 0)(`OS keychain (Secret Service)${missing.length > 0 ? ` — skipped: ${missing.join(', ')} not installed (apt-get install gnome-keyring dbus)` : ''}`, () => {
  let issuer: DevIssuer;
  let gateway: RunningGateway;
  let home: string;
  const secret = crypto.randomBytes(12).toString('hex');

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-keychain-'));
    issuer = await startDevOidcIssuer({ machines: [{ clientId: 'ci-bot', secret, roles: ['ci'] }] });
    fs.writeFileSync(path.join(home, 'ca.pem'), issuer.caCert!);
    const config = parseGatewayConfig(
      {
        listen: { api: '127.0.0.1:0', ssh: '127.0.0.1:0' },
        dataDir: path.join(home, 'gw'),
        auth: { issuers: [{ issuer: issuer.issuer, audience: issuer.audience, ca: 'ca.pem', userClaim: ['preferred_username', 'azp'], groupsClaim: ['groups', 'roles'] }], login: issuer.login },
        connections: { db: { type: 'postgres', host: '127.0.0.1', port: 1, database: 'd', user: 'u', password: 'env:PW' } },
      },
      { source: 'test', baseDir: home, env: { PW: 'x' } },
    );
    gateway = await startGateway(config);
  });

  afterAll(async () => {
    await gateway?.close();
    await issuer?.close();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('keeps the token cache in the Secret Service: login, whoami, logout, and no token file', async () => {
    const hoopctl = `"${process.execPath}" "${HOOPCTL_BIN}" --gateway ${gateway.apiUrl}`;
    const script = [
      'set -e',
      'printf "throwaway" | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &',
      'daemon=$!',
      'trap \'kill $daemon 2>/dev/null || true\' EXIT',
      'for i in $(seq 50); do dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q "boolean true" && break; sleep 0.1; done',
      `${hoopctl} login --client-credentials`,
      `${hoopctl} whoami --json`,
      `${hoopctl} logout`,
      `${hoopctl} whoami || echo "exit=$?"`,
    ].join('\n');
    const child = spawn('dbus-run-session', ['--', 'sh', '-c', script], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        XDG_CONFIG_HOME: path.join(home, '.config'),
        XDG_DATA_HOME: path.join(home, '.local', 'share'),
        XDG_RUNTIME_DIR: home,
        HOOPCTL_TOKEN_STORE: 'keyring',
        HOOPCTL_CA: path.join(home, 'ca.pem'),
        AZURE_CLIENT_ID: 'ci-bot',
        AZURE_CLIENT_SECRET: secret,
        NO_COLOR: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toContain('tokens are kept in the OS keychain (service "hoopctl")');
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout.split('\n')[0]!)).toMatchObject({ user: 'ci-bot', groups: ['ci'], login: { method: 'client_credentials', store: 'keyring' } });
    expect(stderr).toContain(`✓ logged out of ${gateway.apiUrl}`);
    expect(stdout).toContain('exit=3');
    expect(fs.existsSync(path.join(home, '.config', 'hoopctl', 'tokens'))).toBe(false);
    expect(fs.readdirSync(path.join(home, '.local', 'share', 'keyrings')).length).toBeGreaterThan(0);
  });
});
