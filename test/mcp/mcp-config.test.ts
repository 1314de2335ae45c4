import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runMcpConfig, type McpConfigOptions } from '../../src/cli/commands/mcp-config.js';
import { createCapturingIO } from '../../src/cli/io.js';
import { isHoopError } from '../../src/errors.js';

describe('hoopctl mcp config', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-mcp-config-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const options = (over: Partial<McpConfigOptions>): McpConfigOptions => ({
    connection: 'orders-db',
    client: 'claude',
    write: false,
    command: 'hoopctl',
    globals: [],
    serverArgs: [],
    json: false,
    ...over,
  });

  it.each([
    ['claude', { mcpServers: { 'hoop-orders-db': { command: 'hoopctl', args: ['mcp', 'orders-db'] } } }],
    ['cursor', { mcpServers: { 'hoop-orders-db': { command: 'hoopctl', args: ['mcp', 'orders-db'] } } }],
    ['vscode', { servers: { 'hoop-orders-db': { type: 'stdio', command: 'hoopctl', args: ['mcp', 'orders-db'] } } }],
    ['generic', { mcpServers: { 'hoop-orders-db': { command: 'hoopctl', args: ['mcp', 'orders-db'] } } }],
  ] as const)('prints the %s entry', (client, expected) => {
    const io = createCapturingIO();
    runMcpConfig({ io, cwd: dir }, options({ client }));
    expect(JSON.parse(io.stdout)).toEqual(expected);
    expect(io.stdout).not.toMatch(/token|password/i);
  });

  it('passes the gateway and the session flags on', () => {
    const io = createCapturingIO();
    runMcpConfig({ io, cwd: dir }, options({ json: true, globals: ['--gateway', 'https://gw.example'], serverArgs: ['--duration', '1h'], name: 'orders' }));
    expect(io.jsonLines()).toEqual([
      { client: 'claude', name: 'orders', file: '.mcp.json', key: 'mcpServers', entry: { command: 'hoopctl', args: ['--gateway', 'https://gw.example', 'mcp', 'orders-db', '--duration', '1h'] }, written: false },
    ]);
  });

  it('merges into the client’s file, keeping the other servers, and replaces its own entry', () => {
    fs.mkdirSync(path.join(dir, '.vscode'));
    const file = path.join(dir, '.vscode', 'mcp.json');
    fs.writeFileSync(file, JSON.stringify({ inputs: [], servers: { other: { type: 'stdio', command: 'x', args: [] } } }));
    const io = createCapturingIO();
    runMcpConfig({ io, cwd: dir }, options({ client: 'vscode', write: true }));
    expect(io.stdout).toBe('');
    expect(io.stderr).toBe(`added "hoop-orders-db" in ${file} for VS Code\n`);
    runMcpConfig({ io, cwd: dir }, options({ client: 'vscode', write: true, serverArgs: ['--duration', '2h'] }));
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({
      inputs: [],
      servers: { other: { type: 'stdio', command: 'x', args: [] }, 'hoop-orders-db': { type: 'stdio', command: 'hoopctl', args: ['mcp', 'orders-db', '--duration', '2h'] } },
    });
    expect(io.stderr).toContain('replaced "hoop-orders-db"');
  });

  it('creates .cursor/mcp.json when there is none', () => {
    runMcpConfig({ io: createCapturingIO(), cwd: dir }, options({ client: 'cursor', write: true }));
    expect(JSON.parse(fs.readFileSync(path.join(dir, '.cursor', 'mcp.json'), 'utf8'))).toEqual({ mcpServers: { 'hoop-orders-db': { command: 'hoopctl', args: ['mcp', 'orders-db'] } } });
  });

  it('leaves a file that is not JSON as it is, and says so', () => {
    const file = path.join(dir, '.mcp.json');
    fs.writeFileSync(file, '{ not json');
    let error: unknown;
    try {
      runMcpConfig({ io: createCapturingIO(), cwd: dir }, options({ write: true }));
    } catch (err) {
      error = err;
    }
    expect(isHoopError(error) && error.code).toBe('bad_config_file');
    expect(fs.readFileSync(file, 'utf8')).toBe('{ not json');
  });

  it('needs --file to write a generic entry', () => {
    expect(() => runMcpConfig({ io: createCapturingIO(), cwd: dir }, options({ client: 'generic', write: true }))).toThrow(/no default file/);
    const file = path.join(dir, 'agent.json');
    runMcpConfig({ io: createCapturingIO(), cwd: dir }, options({ client: 'generic', write: true, file }));
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).mcpServers['hoop-orders-db'].args).toEqual(['mcp', 'orders-db']);
  });
});
