import type { Duplex } from 'node:stream';

/** Resolves when the stream has emitted 'close' (or already has). */
export function whenStreamClosed(stream: Duplex): Promise<void> {
  if ((stream as { closed?: boolean }).closed === true) return Promise.resolve();
  return new Promise((resolve) => stream.once('close', () => resolve()));
}
