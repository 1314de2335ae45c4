import type { SignalSource } from '../client/launcher.js';

/** Resolves with the first SIGINT or SIGTERM, or when `also` settles; listeners are removed either way. */
export function waitForStopSignal(signals: SignalSource, also?: Promise<unknown>): Promise<NodeJS.Signals | undefined> {
  return new Promise((resolve) => {
    const stop = (signal?: NodeJS.Signals) => {
      signals.removeListener('SIGINT', onInt);
      signals.removeListener('SIGTERM', onTerm);
      resolve(signal);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    signals.on('SIGINT', onInt);
    signals.on('SIGTERM', onTerm);
    void also?.then(
      () => stop(),
      () => stop(),
    );
  });
}
