import { CommanderError } from 'commander';
import { isHoopError } from '../errors.js';
import type { CliDeps } from './context.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import type { IO } from './io.js';
import { buildProgram, buildersFor, type CommandBuilder } from './program.js';

/** Runs hoopctl with `argv` (without node and script) and resolves with the exit code. Never throws. */
export async function runCli(argv: readonly string[], deps: Omit<CliDeps, 'setExitCode'>, builders?: readonly CommandBuilder[]): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const full: CliDeps = { ...deps, setExitCode: (code) => (exitCode = code) };
  // Errors are JSON under --json, even those commander raises before any action runs.
  const dashDash = argv.indexOf('--');
  if ((dashDash === -1 ? argv : argv.slice(0, dashDash)).includes('--json')) deps.io.configure({ json: true });
  try {
    const program = buildProgram(full, builders ?? (await buildersFor(argv)));
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return ExitCode.usage;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    reportError(deps.io, err, deps.env.debug);
    return exitCodeFor(err);
  }
}

/**
 * `error: …` and `hint: …` on stderr; a stack trace only with HOOPCTL_DEBUG=1. Under `--json`,
 * also one `{"event":"error","code","kind","message","hint"?,"exitCode"}` line on stdout.
 */
export function reportError(io: IO, err: unknown, debug: boolean): void {
  if (io.json && exitCodeFor(err) !== ExitCode.ok) io.outJson(errorEvent(err));
  if (err instanceof CommanderError) return; // commander already printed its message (or the help)
  const label = io.color.red('error');
  if (isHoopError(err)) {
    io.err(`${label}: ${err.message}\n`);
    if (err.hint !== undefined) io.err(`hint: ${err.hint}\n`);
  } else {
    io.err(`${label}: ${err instanceof Error ? err.message : String(err)}\n`);
    io.err('hint: this is a bug in hoopctl; run again with HOOPCTL_DEBUG=1 and report the output\n');
  }
  if (debug && err instanceof Error && err.stack !== undefined) {
    io.err(`${err.stack}\n`);
    if (err.cause instanceof Error && err.cause.stack !== undefined) io.err(`caused by: ${err.cause.stack}\n`);
  }
}

/** An error as the `--json` contract shows it. */
export function errorEvent(err: unknown): { event: 'error'; code: string; kind: string; message: string; hint?: string; exitCode: number } {
  const exitCode = exitCodeFor(err);
  if (err instanceof CommanderError) {
    return { event: 'error', code: err.code.replace(/^commander\./, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), kind: 'usage', message: err.message.replace(/^error: /, ''), exitCode };
  }
  if (isHoopError(err)) return { event: 'error', code: err.code, kind: err.kind, message: err.message, ...(err.hint !== undefined ? { hint: err.hint } : {}), exitCode };
  return { event: 'error', code: 'internal_error', kind: 'internal', message: err instanceof Error ? err.message : String(err), exitCode };
}
