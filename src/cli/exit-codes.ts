import { CommanderError } from 'commander';
import { isHoopError, type ErrorKind } from '../errors.js';

/**
 * hoopctl's exit codes — the one place they are decided:
 *
 *   0  success (and `connect` ended with Ctrl-C / SIGTERM)
 *   1  protocol or internal error (a bug, or a gateway speaking another version)
 *   2  usage: bad flags or arguments, port in use; a conflict (the review was already decided)
 *   3  auth: no token, or the gateway refused it
 *   4  denied: the gateway refused the request (access, policy, SSH key)
 *   5  not_found: no such connection or session
 *   6  network: gateway or its SSH endpoint unreachable or timing out
 *   8  connect: the session expired while connected
 *   9  connect: the session was ended from elsewhere (revoked, `sessions end`)
 * 127  connect: the command after `--` was not found (as a shell says it)
 *
 * `connect -- CMD` exits with CMD's own code (128 + n when a signal ended it), or 8 when the
 * session expired while CMD ran.
 */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  auth: 3,
  denied: 4,
  notFound: 5,
  network: 6,
  sessionExpired: 8,
  sessionEndedRemotely: 9,
  commandNotFound: 127,
} as const;

const BY_KIND: Record<ErrorKind, number> = {
  usage: ExitCode.usage,
  auth: ExitCode.auth,
  denied: ExitCode.denied,
  not_found: ExitCode.notFound,
  conflict: ExitCode.usage,
  network: ExitCode.network,
  protocol: ExitCode.internal,
  internal: ExitCode.internal,
};

/** The exit code for anything thrown out of a command. */
export function exitCodeFor(err: unknown): number {
  if (isHoopError(err)) return err.code === 'command_not_found' ? ExitCode.commandNotFound : BY_KIND[err.kind];
  if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  return ExitCode.internal;
}
