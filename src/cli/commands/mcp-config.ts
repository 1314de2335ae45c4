import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { HoopError, errorMessage } from '../../errors.js';
import { globalFlags, type CliDeps } from '../context.js';
import { examples } from '../help-examples.js';
import type { IO } from '../io.js';

export type McpClientKind = 'claude' | 'cursor' | 'vscode' | 'generic';

export interface McpConfigOptions {
  connection: string;
  client: McpClientKind;
  /** Merge the entry into the client's file instead of printing it. */
  write: boolean;
  /** The file to merge into; default: the client's project file under `cwd`. */
  file?: string;
  /** The server's name in the file; default `hoop-<connection>`. */
  name?: string;
  /** The program the client launches; default `hoopctl` (found on its PATH). */
  command: string;
  /** Flags the launched `hoopctl` gets before `mcp`: `--gateway URL`, `--ca FILE`. */
  globals: string[];
  /** Flags after the connection: `--duration`, `--reason`, `--max-rows`, `--review-wait`. */
  serverArgs: string[];
  json: boolean;
}

/** Where each client reads its project's MCP servers, and the shape of its entries. */
const CLIENTS: Record<McpClientKind, { file?: string; key: 'mcpServers' | 'servers'; typed: boolean; label: string }> = {
  claude: { file: '.mcp.json', key: 'mcpServers', typed: false, label: 'Claude Code (.mcp.json; Claude Desktop: the same entry in claude_desktop_config.json)' },
  cursor: { file: path.join('.cursor', 'mcp.json'), key: 'mcpServers', typed: false, label: 'Cursor' },
  vscode: { file: path.join('.vscode', 'mcp.json'), key: 'servers', typed: true, label: 'VS Code' },
  generic: { key: 'mcpServers', typed: false, label: 'an MCP client' },
};

export interface McpServerEntry {
  type?: 'stdio';
  command: string;
  args: string[];
}

/** The client's entry for `hoopctl mcp <connection>`: no token, no password, only the command line. */
export function mcpServerEntry(options: Pick<McpConfigOptions, 'client' | 'command' | 'globals' | 'connection' | 'serverArgs'>): McpServerEntry {
  const args = [...options.globals, 'mcp', options.connection, ...options.serverArgs];
  return CLIENTS[options.client].typed ? { type: 'stdio', command: options.command, args } : { command: options.command, args };
}

/** Prints the entry (as a whole file's JSON), or with `write` merges it into the client's file, keeping every other entry. */
export function runMcpConfig(deps: { io: IO; cwd: string }, options: McpConfigOptions): void {
  const client = CLIENTS[options.client];
  const name = options.name ?? `hoop-${options.connection}`;
  const entry = mcpServerEntry(options);
  const document = { [client.key]: { [name]: entry } };
  if (!options.write) {
    if (options.json) deps.io.outJson({ client: options.client, name, file: client.file ?? null, key: client.key, entry, written: false });
    else deps.io.out(JSON.stringify(document, null, 2) + '\n');
    return;
  }
  const file = path.resolve(deps.cwd, options.file ?? client.file ?? '');
  if (options.file === undefined && client.file === undefined) {
    throw new HoopError('usage', 'no_config_file', `--client ${options.client} has no default file to write`, { hint: 'pass --file PATH, or print the entry without --write' });
  }
  const merged = readConfig(file);
  const servers = merged[client.key];
  if (servers !== undefined && (typeof servers !== 'object' || servers === null || Array.isArray(servers))) {
    throw new HoopError('usage', 'bad_config_file', `${file}: "${client.key}" is not an object`, { hint: 'fix the file by hand, or write to another with --file' });
  }
  const replaced = servers !== undefined && name in (servers as object);
  merged[client.key] = { ...(servers as object | undefined), [name]: entry };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(merged, null, 2) + '\n');
  if (options.json) deps.io.outJson({ client: options.client, name, file, key: client.key, entry, written: true, replaced });
  else deps.io.err(`${replaced ? 'replaced' : 'added'} "${name}" in ${file} for ${client.label}\n`);
}

function readConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new HoopError('usage', 'config_unreadable', `cannot read ${file}: ${errorMessage(err)}`, { cause: err });
  }
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new HoopError('usage', 'bad_config_file', `${file} is not valid JSON (${errorMessage(err)}); it was left as it is`, { hint: 'fix the file, or print the entry without --write and add it by hand', cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new HoopError('usage', 'bad_config_file', `${file} does not hold a JSON object; it was left as it is`, { hint: 'fix the file, or write to another with --file' });
  }
  return parsed as Record<string, unknown>;
}

export function buildMcpConfigCommand(deps: CliDeps): Command {
  return new Command('config')
    .description("print (or with --write, merge into the client's file) the MCP server entry that launches hoopctl mcp for a connection")
    .argument('<connection>', 'connection name')
    .addOption(new Option('--client <client>', 'the MCP client').choices(['claude', 'cursor', 'vscode', 'generic']).default('generic'))
    .option('--write', 'merge the entry into the client’s project file (.mcp.json, .cursor/mcp.json, .vscode/mcp.json), keeping the others')
    .option('--file <path>', 'with --write: this file instead of the client’s default')
    .option('--name <name>', 'the server’s name in the file (default: hoop-CONNECTION)')
    .option('--command <path>', 'the program the client launches (default: hoopctl, from its PATH)', 'hoopctl')
    .option('--duration <d>', 'passed on: session length')
    .option('--reason <text>', 'passed on: why the agent needs access')
    .option('--max-rows <n>', 'passed on: rows a query returns at most')
    .option('--review-wait <d>', 'passed on: how long a held statement keeps a call waiting')
    .option('--json', 'print JSON')
    .addHelpText('after', examples(['hoopctl mcp config orders-db --client claude --write', 'hoopctl mcp config orders-db --client vscode --duration 1h']))
    .action(
      (
        connection: string,
        opts: { client: McpClientKind; write?: boolean; file?: string; name?: string; command: string; duration?: string; reason?: string; maxRows?: string; reviewWait?: string },
        command: Command,
      ) => {
        const flags = globalFlags(command);
        // `mcp` itself has these options, so commander hands them to it when given after `config`.
        const parent = command.parent;
        const fromParent = (key: 'duration' | 'reason' | 'maxRows' | 'reviewWait'): string | undefined =>
          opts[key] ?? (parent?.getOptionValueSource(key) === 'cli' ? String(parent.opts()[key]) : undefined);
        const serverArgs = [
          ...(fromParent('duration') !== undefined ? ['--duration', fromParent('duration')!] : []),
          ...(fromParent('reason') !== undefined ? ['--reason', fromParent('reason')!] : []),
          ...(fromParent('maxRows') !== undefined ? ['--max-rows', fromParent('maxRows')!] : []),
          ...(fromParent('reviewWait') !== undefined ? ['--review-wait', fromParent('reviewWait')!] : []),
        ];
        const globals = [...(flags.gateway !== undefined ? ['--gateway', flags.gateway] : []), ...(flags.ca !== undefined ? ['--ca', path.resolve(flags.ca)] : [])];
        runMcpConfig(
          { io: deps.io, cwd: process.cwd() },
          { connection, client: opts.client, write: opts.write === true, file: opts.file, name: opts.name, command: opts.command, globals, serverArgs, json: flags.json },
        );
      },
    );
}
