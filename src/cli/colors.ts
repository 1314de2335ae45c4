/**
 * The few terminal colours the CLI prints with: ECMA-48 SGR codes (bold 1/22, dim 2/22, red 31,
 * green 32, yellow 33, cyan 36, each closed by 39), as chalk writes them at its level 1.
 *
 * Not chalk itself: its modules took ~15 ms of every run of the CLI to load, for six styles
 * whose level we set ourselves. A line break inside styled text closes the style before it and
 * opens it again after, as chalk does, so a pager or a log that cuts lines keeps them apart.
 */

/** A style: the text wrapped in its codes, or the text unchanged when colour is off. */
export type Style = (text: string) => string;

export interface Colors {
  /** 1 when styles apply, 0 when they return text unchanged. */
  readonly level: 0 | 1;
  readonly bold: Style;
  readonly dim: Style;
  readonly red: Style;
  readonly green: Style;
  readonly yellow: Style;
  readonly cyan: Style;
}

const ESC = '\u001b[';

function style(open: number, close: number): Style {
  const start = `${ESC}${open}m`;
  const end = `${ESC}${close}m`;
  return (text) => (text === '' ? '' : start + text.replace(/\r?\n/g, (lineBreak) => end + lineBreak + start) + end);
}

const plain: Style = (text) => text;

/** Styles that colour when `on`, and return the text unchanged otherwise. */
export function colors(on: boolean): Colors {
  if (!on) return { level: 0, bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };
  return { level: 1, bold: style(1, 22), dim: style(2, 22), red: style(31, 39), green: style(32, 39), yellow: style(33, 39), cyan: style(36, 39) };
}
