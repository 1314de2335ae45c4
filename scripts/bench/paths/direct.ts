import type { BenchPath } from '../definitions.js';

/** The client talks to PostgreSQL itself: the ceiling every other path is measured against. */
export const directPath: BenchPath = {
  id: 'direct',
  label: 'direct',
  async start(ctx) {
    return { endpoint: ctx.upstream, stop: async () => undefined };
  },
};
