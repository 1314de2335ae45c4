import { CommanderError } from 'commander';
import { isHoopError } from '../errors.js';
import type { CliDeps } from './context.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import type { IO } from './io.js';
import { buildProgram, type CommandBuilder } from './program.js';

/** Runs hoopctl with `argv` (without node and script) and resolves with the exit code. Never throws. */
export async function runCli(argv: readonly string[], deps: Omit<CliDeps, 'setExitCode'>, builders?: readonly CommandBuilder[]): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const full: CliDeps = { ...deps, setExitCode: (code) => (exitCode = code) };
  try {
    const program = buildProgram(full, builders);
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

/** `error: …` and `hint: …` on stderr; a stack trace only with HOOPCTL_DEBUG=1. */
export function reportError(io: IO, err: unknown, debug: boolean): void {
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
