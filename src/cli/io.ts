import { colors, type Colors } from './colors.js';

/** A place text goes; `process.stdout` and `process.stderr` fit. */
export interface TextSink {
  write(text: string): unknown;
}

/**
 * The CLI's streams and terminal facts. Data goes to `out` (stdout), progress, warnings and
 * errors to `err` (stderr). Commands print only through this, so tests capture everything.
 */
export interface IO {
  out(text: string): void;
  err(text: string): void;
  /** One JSON value per line on stdout (the `--json` contract). */
  outJson(value: unknown): void;
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  readonly stdinIsTTY: boolean;
  /** Whether output is JSON (`--json`); set once the global flags are parsed. */
  json: boolean;
  /** Colours for human output; a no-op instance when colour is off. */
  readonly color: Colors;
  /** Applies the global flags: `--json`, `--no-color`. */
  configure(flags: { json?: boolean; color?: boolean }): void;
}

export interface IOOptions {
  stdout: TextSink;
  stderr: TextSink;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  stdinIsTTY: boolean;
  /** `NO_COLOR` set (any value) turns colour off; see https://no-color.org. */
  noColorEnv: boolean;
}

/** Colour only on a terminal, never with NO_COLOR, `--no-color` or `--json`. */
export function createIO(options: IOOptions): IO {
  let colorWanted = !options.noColorEnv && options.stderrIsTTY && options.stdoutIsTTY;
  let color = colors(colorWanted);
  const io: IO = {
    out: (text) => void options.stdout.write(text),
    err: (text) => void options.stderr.write(text),
    outJson: (value) => void options.stdout.write(JSON.stringify(value) + '\n'),
    stdoutIsTTY: options.stdoutIsTTY,
    stderrIsTTY: options.stderrIsTTY,
    stdinIsTTY: options.stdinIsTTY,
    json: false,
    get color() {
      return color;
    },
    configure(flags) {
      if (flags.json !== undefined) io.json = flags.json;
      if (flags.color === false || io.json) colorWanted = false;
      color = colors(colorWanted);
    },
  };
  return io;
}

/** An IO whose output is kept in memory, for tests. */
export interface CapturingIO extends IO {
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON lines. */
  jsonLines(): unknown[];
}

export function createCapturingIO(options: { tty?: boolean; noColorEnv?: boolean } = {}): CapturingIO {
  let stdout = '';
  let stderr = '';
  const tty = options.tty ?? false;
  const io = createIO({
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    stdoutIsTTY: tty,
    stderrIsTTY: tty,
    stdinIsTTY: tty,
    noColorEnv: options.noColorEnv ?? false,
  });
  // defineProperties, not Object.assign: assign would copy the getters' current values.
  return Object.defineProperties(io, {
    stdout: { get: () => stdout },
    stderr: { get: () => stderr },
    jsonLines: {
      value: () =>
        stdout
          .split('\n')
          .filter((line) => line.trim() !== '')
          .map((line) => JSON.parse(line) as unknown),
    },
  }) as CapturingIO;
}

/** An IO whose data output goes to stderr as human text: for progress of a command whose stdout is reserved (`hoopctl env`). */
export function progressOnly(io: IO): IO {
  const view: IO = {
    out: (text) => io.err(text),
    err: (text) => io.err(text),
    outJson: () => undefined,
    stdoutIsTTY: io.stderrIsTTY,
    stderrIsTTY: io.stderrIsTTY,
    stdinIsTTY: io.stdinIsTTY,
    json: false,
    get color() {
      return io.color;
    },
    configure: () => undefined,
  };
  return view;
}
