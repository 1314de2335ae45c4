import type { IO } from './io.js';

/**
 * Prints rows the way `gh` does: aligned columns under a header on a terminal; tab-separated,
 * no header, when piped, so `cut -f1` works.
 */
export function printTable(io: IO, header: readonly string[], rows: readonly (readonly string[])[]): void {
  if (!io.stdoutIsTTY) {
    for (const row of rows) io.out(row.join('\t') + '\n');
    return;
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const pad = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  io.out(io.color.bold(pad(header)) + '\n');
  for (const row of rows) io.out(pad(row) + '\n');
}
