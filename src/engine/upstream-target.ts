import net from 'node:net';
import { errorMessage } from '../errors.js';
import type { PasswordInput } from '../secrets/password-source.js';

/** The real database behind a connection, as both engines dial and log in to it. */
export interface DatabaseTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  /** Asked on every login (a token or a rotated secret is used by the next one); told when the server refuses it. */
  password: PasswordInput;
  /** verify-full without `ca`: Node's trusted roots (and NODE_EXTRA_CA_CERTS). */
  tls: { mode: 'disable' | 'require' | 'verify-full'; ca?: string /* PEM text */ };
}

/** Opens the TCP connection to the database (tests pass their own). */
export type Dialer = (host: string, port: number) => net.Socket;

export const defaultDialer: Dialer = (host, port) => net.connect({ host, port });

/** A socket error as people read it: its code (`ECONNREFUSED`) when it has one. */
export function networkReason(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : errorMessage(err);
}
