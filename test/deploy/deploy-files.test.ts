// The deployment files in deploy/ agree with the gateway: its config parses, every variable and
// file it needs is provided and documented, ports line up, probes hit endpoints that answer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig, type GatewayConfig } from '../../src/gateway/config.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

type Doc = Record<string, any>;
const gatewayYaml = read('deploy/gateway.yaml');
const gatewayTree = parseYaml(gatewayYaml) as Doc;
const compose = parseYaml(read('deploy/docker-compose.yaml'), { merge: true }) as Doc;
const k8s: Doc[] = fs
  .readdirSync(path.join(root, 'deploy/kubernetes'))
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(read(`deploy/kubernetes/${f}`)).map((d) => d.toJSON() as Doc));
const kind = (k: string) => k8s.filter((d) => d.kind === k);
const deployment = kind('Deployment')[0]!;
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const dockerfile = read('deploy/Dockerfile');
const haproxy = read('deploy/haproxy.cfg');
const readme = read('README.md');
const production = readme.slice(readme.indexOf('## Run in production'), readme.indexOf('\n## ', readme.indexOf('## Run in production') + 5));

/** `env:NAME` and `file:/path` references, and the API's TLS files, in a config tree. */
function references(tree: unknown): { env: Set<string>; files: Set<string> } {
  const env = new Set<string>();
  const files = new Set<string>();
  const walk = (v: unknown, key = '') => {
    if (typeof v === 'string') {
      if (v.startsWith('env:')) env.add(v.slice(4));
      else if (v.startsWith('file:')) files.add(v.slice(5));
      else if (key === 'cert' || key === 'key') files.add(v);
    } else if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) walk(c, k);
  };
  walk(tree);
  return { env, files };
}
const needed = references(gatewayTree);
const port = (hostPort: string) => Number(hostPort.split(':').at(-1));
const apiPort = port(gatewayTree.listen.api.address);
const sshPort = port(gatewayTree.listen.ssh);
const gatewayServices = Object.entries(compose.services as Record<string, Doc>).filter(([, s]) => s.image === 'hoopctl-gateway');

describe('deploy/gateway.yaml', () => {
  it('is a valid config for this gateway (PostgreSQL store, shared host key and masking key)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-deploy-'));
    try {
      // The mounted files, with stand-in contents, where the config names them.
      const text = gatewayYaml.replaceAll('/etc/hoop/', `${dir}/`);
      for (const file of needed.files) {
        const local = file.replace('/etc/hoop/', `${dir}/`);
        fs.mkdirSync(path.dirname(local), { recursive: true });
        fs.writeFileSync(local, 'stand-in');
      }
      const env = Object.fromEntries([...needed.env].map((n) => [n, n === 'HOOP_STORE_URL' ? 'postgres://hoop:pw@store:5432/hoop' : 'x'.repeat(32)]));
      const config: GatewayConfig = parseGatewayConfig(parseYaml(text), { source: 'deploy/gateway.yaml', baseDir: dir, env });
      expect(config.store.type).toBe('postgres');
      expect(config.sshHostKey).toBe('stand-in');
      expect(config.maskingHashKey).toBeDefined();
      expect(config.listen.api.tls).toBeDefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is what the Kubernetes ConfigMap carries', () => {
    expect(parseYaml(kind('ConfigMap')[0]!.data['gateway.yaml'])).toEqual(gatewayTree);
  });

  it('has every variable and file it reads documented in the README’s "Run in production"', () => {
    expect(production.length).toBeGreaterThan(500);
    for (const name of needed.env) expect(production, name).toContain(name);
    for (const file of needed.files) expect(production, file).toContain(file);
    expect(production).toContain(gatewayTree.dataDir);
  });
});

describe('docker-compose.yaml', () => {
  it('runs two gateway replicas, a PostgreSQL store, a target database and HAProxy', () => {
    expect(gatewayServices.map(([name]) => name)).toEqual(['gateway-a', 'gateway-b']);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['store', 'orders-db', 'haproxy']));
  });

  it.each(['gateway-a', 'gateway-b'])('gives %s every variable and file the config reads, the config itself, and a data volume', (name) => {
    const service = compose.services[name] as Doc;
    expect(Object.keys(service.environment).sort()).toEqual([...needed.env].sort());
    const targets = (service.volumes as string[]).map((v) => v.split(':')[1]!);
    expect(targets).toEqual(expect.arrayContaining([...needed.files, '/etc/hoop/gateway.yaml', gatewayTree.dataDir]));
    for (const v of service.volumes as string[]) {
      const source = v.split(':')[0]!;
      if (source.startsWith('./') && !source.startsWith('./secrets/')) expect(fs.existsSync(path.join(root, 'deploy', source)), source).toBe(true);
    }
    // Secrets come from make-secrets.sh, which makes exactly the files mounted.
    const secrets = (service.volumes as string[]).map((v) => v.split(':')[0]!).filter((s) => s.startsWith('./secrets/'));
    for (const s of secrets) expect(read('deploy/make-secrets.sh'), s).toContain(s.slice(2));
    expect(service.expose.map(Number).sort()).toEqual([apiPort, sshPort].sort());
  });

  it('puts HAProxy in front of both replicas on the config’s ports, checking /readyz', () => {
    const servers = [...haproxy.matchAll(/^\s*server (\S+) (\S+):(\d+)(.*)$/gm)];
    expect(servers.map((m) => `${m[2]}:${m[3]}`).sort()).toEqual(
      gatewayServices.flatMap(([name]) => [`${name}:${apiPort}`, `${name}:${sshPort}`]).sort(),
    );
    for (const m of servers) expect(m[4]).toMatch(new RegExp(`check( port ${apiPort})?`));
    expect(compose.services.haproxy.ports.map((p: string) => port(p)).sort()).toEqual([apiPort, sshPort].sort());
  });
});

describe('Dockerfile', () => {
  it('builds in stages and runs `hoopctl gateway serve` as a non-root user, exposing the config’s ports', () => {
    expect(dockerfile.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2);
    const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(dockerfile)![1]!) as string[];
    expect(cmd.slice(0, 2)).toEqual(['gateway', 'serve']);
    expect(cmd[cmd.indexOf('--config') + 1]).toBe('/etc/hoop/gateway.yaml');
    expect(/^EXPOSE (.*)$/m.exec(dockerfile)![1]!.split(/\s+/).map(Number).sort()).toEqual([apiPort, sshPort].sort());
    expect(dockerfile).toContain(`chown node:node ${gatewayTree.dataDir}`);
  });

  it('copies only files that exist in the repository', () => {
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.*) \S+$/gm)) {
      for (const source of m[1]!.split(/\s+/)) expect(fs.existsSync(path.join(root, source)), source).toBe(true);
    }
  });
});

describe('Kubernetes manifests', () => {
  it('run at least two replicas, never both down for a voluntary disruption', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    const pdb = kind('PodDisruptionBudget')[0]!;
    expect(pdb.spec.selector).toEqual(deployment.spec.selector);
    expect(pdb.spec.minAvailable).toBeGreaterThanOrEqual(1);
  });

  it('run as non-root with the config’s ports, and Services for the API and SSH that reach them', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const ports = Object.fromEntries((container.ports as Doc[]).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ api: apiPort, ssh: sshPort });
    const services = kind('Service');
    expect(services.map((s) => s.spec.ports.map((p: Doc) => p.targetPort)).flat().sort()).toEqual(['api', 'ssh']);
    for (const s of services) expect(deployment.spec.template.metadata.labels).toMatchObject(s.spec.selector);
  });

  it('take every variable from the Secret and mount every file the config reads', () => {
    const secret = kind('Secret')[0]!;
    const env = container.env as Doc[];
    expect(env.map((e) => e.name).sort()).toEqual([...needed.env].sort());
    for (const e of env) {
      expect(e.valueFrom.secretKeyRef.name).toBe(secret.metadata.name);
      expect(Object.keys(secret.stringData)).toContain(e.valueFrom.secretKeyRef.key);
    }
    const mounts = container.volumeMounts as Doc[];
    expect(mounts.map((m) => m.mountPath)).toEqual(expect.arrayContaining([...needed.files, '/etc/hoop/gateway.yaml', gatewayTree.dataDir]));
    const secretVolume = (pod.volumes as Doc[]).find((v) => v.secret)!;
    for (const m of mounts.filter((m) => m.name === secretVolume.name)) expect(Object.keys(secret.stringData)).toContain(m.subPath);
    expect(container.args[container.args.indexOf('--config') + 1]).toBe('/etc/hoop/gateway.yaml');
  });
});

describe('probes and health checks', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ env: { PW: 'x' }, connections: { db: { type: 'postgres', host: '127.0.0.1', port: 1, database: 'd', user: 'u', password: 'env:PW' } } });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  const probes = (): string[] => [
    container.livenessProbe.httpGet.path,
    container.readinessProbe.httpGet.path,
    ...[...haproxy.matchAll(/uri (\S+)/g)].map((m) => m[1]!),
    ...gatewayServices.map(([, s]) => /path: '([^']+)'/.exec(s.healthcheck.test.join(' '))![1]!),
  ];

  it('point at the API port and at endpoints a running gateway answers with 200', async () => {
    expect(container.livenessProbe.httpGet.port).toBe('api');
    expect(container.readinessProbe.httpGet.scheme).toBe('HTTPS');
    const paths = [...new Set(probes())];
    expect(paths.sort()).toEqual(['/healthz', '/readyz']);
    for (const p of paths) expect((await fetch(`${gw.gateway.apiUrl}${p}`)).status, p).toBe(200);
  });
});
