/**
 * The tunnels running on this machine for this OS user, as files in a per-user runtime
 * directory (`$XDG_RUNTIME_DIR/hoopctl`, else `$TMPDIR/hoopctl-<uid>`), mode 0700:
 *
 *   <session>.json              the record: connection, session, address, pid, expiry, state
 *   <session>.pgpass            background tunnels: a pgpass line for PGPASSFILE          (0600)
 *   <session>.pg_service.conf   background tunnels: a service section for PGSERVICEFILE   (0600)
 *
 * A tunnel writes its record when it is ready and removes its files when it ends. A record
 * whose process is gone (killed, crashed, machine rebooted) is removed by whoever lists the
 * directory next, so nothing shows a dead tunnel. A process id is checked with its start time
 * where the system tells it (Linux `/proc`), so a reused pid is not taken for the tunnel.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HoopError, errorMessage } from '../errors.js';
import type { ListenAddress } from './tunnel.js';

/** `foreground`: `connect` in a terminal; `command`: `connect -- CMD`; `background`: `connect --background`. */
export type LocalTunnelMode = 'foreground' | 'command' | 'background';
/** `up`; `reconnecting` while the SSH connection is down; `expiring` once the end is near. */
export type LocalTunnelState = 'up' | 'reconnecting' | 'expiring';

export interface LocalTunnelRecord {
  version: 1;
  sessionId: string;
  connection: string;
  /** The gateway's URL, as `connect` was given it. */
  gateway: string;
  /** The session's user (a label) and principal. */
  user: string;
  issuer: string | null;
  subject: string | null;
  mode: LocalTunnelMode;
  pid: number;
  /** The process's start time as the system counts it; tells a reused pid apart. */
  processStart?: string;
  /** A background tunnel ends its session when this process exits (`--owner`). */
  owner?: number;
  address: ListenAddress;
  /** `type` absent in records written before MySQL: postgres. */
  database: { user: string; name: string; type?: 'postgres' | 'mysql' };
  /** Background tunnels only: the session's local password, for `hoopctl env` and reuse. */
  password?: string;
  expiresAt: string;
  startedAt: string;
  state: LocalTunnelState;
  /** Background tunnels: where their log goes. */
  log?: string;
}

export interface LocalTunnelsOptions {
  /** Whether `pid` still runs and is the process that started at `start`; defaults to the real check. */
  isAlive?: (pid: number, start: string | undefined) => boolean;
}

/** The runtime directory and the records in it. */
export class LocalTunnels {
  private readonly isAlive: (pid: number, start: string | undefined) => boolean;

  constructor(
    readonly dir: string,
    options: LocalTunnelsOptions = {},
  ) {
    this.isAlive = options.isAlive ?? processAlive;
  }

  /** Creates the directory (0700) or checks that the one there is ours and private; refuses otherwise. */
  ensureDir(): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new HoopError('internal', 'runtime_dir_failed', `cannot create ${this.dir}: ${errorMessage(err)}`, { hint: 'set XDG_RUNTIME_DIR to a directory of yours', cause: err });
    }
    this.checkDir();
  }

  /** Refuses a directory that is not ours (someone else's records could send us to their port); false when there is none yet. */
  private checkDir(): boolean {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(this.dir);
    } catch {
      return false;
    }
    const uid = process.getuid?.();
    if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid)) {
      throw new HoopError('denied', 'unsafe_runtime_dir', `${this.dir} is not a directory of yours; refusing to keep tunnel state (with passwords) there`, {
        hint: 'remove it, or set XDG_RUNTIME_DIR to a private directory of yours',
      });
    }
    if ((stat.mode & 0o077) !== 0) fs.chmodSync(this.dir, 0o700);
    return true;
  }

  fileOf(sessionId: string, suffix: '.json' | '.pgpass' | '.pg_service.conf'): string {
    if (!/^[A-Za-z0-9_-]+$/.test(sessionId)) throw new HoopError('protocol', 'bad_session_id', `the gateway named a session "${sessionId}"`);
    return path.join(this.dir, sessionId + suffix);
  }

  /** Writes (or replaces) a tunnel's record, atomically, mode 0600. */
  write(record: LocalTunnelRecord): void {
    this.ensureDir();
    writePrivate(this.fileOf(record.sessionId, '.json'), JSON.stringify(record, null, 2) + '\n');
  }

  /** Writes one of a tunnel's secret files (pgpass, service file), mode 0600; returns its path. */
  writeSecret(sessionId: string, suffix: '.pgpass' | '.pg_service.conf', text: string): string {
    this.ensureDir();
    const file = this.fileOf(sessionId, suffix);
    writePrivate(file, text);
    return file;
  }

  /** Removes a tunnel's files (record, pgpass, service file and its log). */
  remove(sessionId: string): void {
    const record = this.read(sessionId);
    for (const suffix of ['.json', '.pgpass', '.pg_service.conf'] as const) fs.rmSync(this.fileOf(sessionId, suffix), { force: true });
    if (record?.log !== undefined && path.dirname(record.log) === this.dir) fs.rmSync(record.log, { force: true });
  }

  read(sessionId: string): LocalTunnelRecord | undefined {
    try {
      return parseRecord(fs.readFileSync(this.fileOf(sessionId, '.json'), 'utf8'));
    } catch {
      return undefined;
    }
  }

  /** The live tunnels, oldest first; the files of dead ones (and stray logs) are removed on the way. */
  list(): LocalTunnelRecord[] {
    if (!this.checkDir()) return [];
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    const live: LocalTunnelRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -'.json'.length);
      const record = this.read(id);
      if (record !== undefined && this.isAlive(record.pid, record.processStart)) live.push(record);
      else if (/^[A-Za-z0-9_-]+$/.test(id)) this.remove(id);
    }
    // A secret or log file with no live record is left over from a crash.
    const ids = new Set(live.map((r) => r.sessionId));
    const logs = new Set(live.map((r) => r.log));
    for (const name of names) {
      const full = path.join(this.dir, name);
      const secret = /^([A-Za-z0-9_-]+)\.(pgpass|pg_service\.conf)$/.exec(name);
      if (secret && !ids.has(secret[1]!)) fs.rmSync(full, { force: true });
      const log = /^background-(\d+)-[0-9a-f]+\.log$/.exec(name);
      if (log && !logs.has(full) && !this.isAlive(Number(log[1]), undefined)) fs.rmSync(full, { force: true });
    }
    return live.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /** A new log file for a background tunnel started by process `pid`, mode 0600. */
  newLogFile(pid: number): { path: string; fd: number } {
    this.ensureDir();
    const file = path.join(this.dir, `background-${pid}-${crypto.randomBytes(4).toString('hex')}.log`);
    return { path: file, fd: fs.openSync(file, 'wx', 0o600) };
  }
}

function parseRecord(text: string): LocalTunnelRecord | undefined {
  const value = JSON.parse(text) as Partial<LocalTunnelRecord>;
  if (value.version !== 1 || typeof value.sessionId !== 'string' || typeof value.pid !== 'number' || typeof value.connection !== 'string' || typeof value.address !== 'object') {
    return undefined;
  }
  return value as LocalTunnelRecord;
}

function writePrivate(file: string, text: string): void {
  const temp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(temp, text, { mode: 0o600, flag: 'wx' });
  fs.renameSync(temp, file);
}

/** When the process started, as Linux counts it (`/proc/<pid>/stat` field 22); undefined elsewhere. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** Whether `pid` runs (and, when `start` is known and the system tells it, started then). */
export function processAlive(pid: number, start: string | undefined): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === start;
}
