import path from 'node:path';
import type { SessionInfo } from '../api/types.js';
import type { TunnelReady } from './tunnel.js';

/** How a local client reaches a tunnel: the fields of `connect`'s `ready` event and a wrapped command's environment. */
export interface LocalEndpoint {
  /** The database's protocol: which client variables and command line fit. */
  type: 'postgres' | 'mysql';
  host: string;
  port: number;
  socket?: string;
  user: string;
  password: string;
  database: string;
  /** `postgresql://…` (the scheme SQLAlchemy 2 and libpq both accept) or `mysql://…`, password included. */
  url: string;
  expiresAt: string;
}

/**
 * The local endpoint of a ready tunnel. A unix socket works with libpq when it is named
 * `.s.PGSQL.<port>`: host = its directory, port = that number.
 */
export function localEndpoint(ready: Pick<TunnelReady, 'address' | 'database' | 'session'>): LocalEndpoint {
  const { user, password, name: database } = ready.database;
  const type = ready.database.type ?? 'postgres';
  const base = { type, user, password, database, expiresAt: ready.session.expiresAt };
  if (ready.address.kind === 'tcp') {
    const { host, port } = ready.address;
    const url = type === 'mysql' ? mysqlUrl({ user, password, database, host, port }) : databaseUrl({ user, password, database, host, port });
    return { ...base, host, port, url };
  }
  if (type === 'mysql') {
    const socket = ready.address.path;
    return { ...base, host: 'localhost', port: 0, socket, url: mysqlUrl({ user, password, database, host: 'localhost', socket }) };
  }
  const socket = ready.address.path;
  const dir = path.dirname(socket);
  const port = Number(/^\.s\.PGSQL\.(\d+)$/.exec(path.basename(socket))?.[1] ?? 5432);
  return { ...base, host: dir, port, socket, url: databaseUrl({ user, password, database, host: dir, port, socket: true }) };
}

/** A libpq connection URI; without `password`, libpq falls back to PGPASSFILE / ~/.pgpass. */
export function databaseUrl(p: { user: string; password?: string; database: string; host: string; port: number; socket?: boolean }): string {
  const auth = encodeURIComponent(p.user) + (p.password !== undefined ? `:${encodeURIComponent(p.password)}` : '');
  if (p.socket) return `postgresql://${auth}@/${encodeURIComponent(p.database)}?host=${encodeURIComponent(p.host)}&port=${p.port}&sslmode=disable`;
  return `postgresql://${auth}@${p.host}:${p.port}/${encodeURIComponent(p.database)}?sslmode=disable`;
}

/** A `mysql://` URL (mysql2, SQLAlchemy with a MySQL driver, Prisma); a unix socket as `?socket=`. */
export function mysqlUrl(p: { user: string; password?: string; database: string; host: string; port?: number; socket?: string }): string {
  const auth = encodeURIComponent(p.user) + (p.password !== undefined ? `:${encodeURIComponent(p.password)}` : '');
  if (p.socket !== undefined) return `mysql://${auth}@localhost/${encodeURIComponent(p.database)}?socket=${encodeURIComponent(p.socket)}`;
  return `mysql://${auth}@${p.host}:${p.port}/${encodeURIComponent(p.database)}`;
}

/** The URL without its password, for screens and logs. */
export function withoutPassword(url: string): string {
  return url.replace(/^((?:postgres(?:ql)?|mysql):\/\/[^:@/]*):[^@]*@/, '$1@');
}

/** The command line for people: psql, or the mariadb client (the password in MYSQL_PWD, never in argv). */
export function clientLine(endpoint: LocalEndpoint): string {
  if (endpoint.type !== 'mysql') return psqlLine(endpoint);
  const where = endpoint.socket !== undefined ? `-S ${endpoint.socket}` : `-h ${endpoint.host} -P ${endpoint.port}`;
  return `MYSQL_PWD=${endpoint.password} mariadb ${where} -u ${endpoint.user} ${endpoint.database}   # or: mysql, same flags`;
}

/** The variable that holds the password in a wrapped command's environment. */
export function passwordVariable(endpoint: LocalEndpoint): string {
  return endpoint.type === 'mysql' ? 'MYSQL_PWD' : 'PGPASSWORD';
}

/** A psql line that keeps the password out of psql's argv (`ps` shows argv to every user). */
export function psqlLine(endpoint: LocalEndpoint): string {
  return `PGPASSWORD=${endpoint.password} psql "${withoutPassword(endpoint.url)}"`;
}

/**
 * The variables a launched command gets: libpq's PG* set (or, for MySQL, what the mysql and
 * mariadb clients read: MYSQL_HOST, MYSQL_TCP_PORT or MYSQL_UNIX_PORT, MYSQL_PWD; they take the
 * user and database as arguments, so MYSQL_USER and MYSQL_DATABASE are set for scripts), DATABASE_URL
 * and the session's facts.
 */
export function commandEnv(endpoint: LocalEndpoint, session: Pick<SessionInfo, 'id' | 'expiresAt'>): Record<string, string> {
  if (endpoint.type === 'mysql') {
    return {
      DATABASE_URL: endpoint.url,
      ...(endpoint.socket !== undefined ? { MYSQL_UNIX_PORT: endpoint.socket } : { MYSQL_HOST: endpoint.host, MYSQL_TCP_PORT: String(endpoint.port) }),
      MYSQL_PWD: endpoint.password,
      MYSQL_USER: endpoint.user,
      MYSQL_DATABASE: endpoint.database,
      HOOP_SESSION_ID: session.id,
      HOOP_SESSION_EXPIRES_AT: session.expiresAt,
    };
  }
  return {
    DATABASE_URL: endpoint.url,
    PGHOST: endpoint.socket !== undefined ? path.dirname(endpoint.socket) : endpoint.host,
    PGPORT: String(endpoint.port),
    PGUSER: endpoint.user,
    PGPASSWORD: endpoint.password,
    PGDATABASE: endpoint.database,
    PGSSLMODE: 'disable',
    HOOP_SESSION_ID: session.id,
    HOOP_SESSION_EXPIRES_AT: session.expiresAt,
  };
}

/** One `~/.pgpass` line (`host:port:database:user:password`, `:` and `\` escaped) for the endpoint. */
export function pgpassLine(endpoint: LocalEndpoint): string {
  const field = (text: string) => text.replace(/[\\:]/g, (c) => `\\${c}`);
  return [endpoint.host, String(endpoint.port), endpoint.database, endpoint.user, endpoint.password].map(field).join(':') + '\n';
}

/** A `pg_service.conf` section naming everything libpq needs, password included. */
export function serviceFileText(service: string, endpoint: LocalEndpoint): string {
  const lines = [`[${service}]`, `host=${endpoint.host}`, `port=${endpoint.port}`, `dbname=${endpoint.database}`, `user=${endpoint.user}`, `password=${endpoint.password}`, 'sslmode=disable'];
  return lines.join('\n') + '\n';
}
