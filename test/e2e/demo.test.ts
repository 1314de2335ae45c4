import { describe, expect, it } from 'vitest';
import { runHoopctl } from '../helpers/cli-process.js';

describe('hoopctl demo', () => {
  it('runs the tour on the embedded default and exits cleanly with --no-wait', async () => {
    const run = await runHoopctl(['demo', '--no-wait'], { HOME: process.env.HOME ?? '/tmp' }, 120_000);
    expect(run.stderr).not.toMatch(/^error:/m);
    expect(run.code).toBe(0);
    // 1. a query through the tunnel: customers and their order counts
    expect(run.stdout).toMatch(/Grace Hopper\s+2/);
    // 2. the wrapped agent saw only the session's environment and got rows
    expect(run.stdout).toMatch(/agent: shipped\s+2/);
    expect(run.stdout).toMatch(/agent: HOOP_SESSION_ID=ses_/);
    // 3. a wrong local password is refused by the gateway
    expect(run.stderr).toMatch(/refused: password authentication failed/);
    expect(run.stdout).toMatch(/psql "postgres:\/\/app:[^@]+@127\.0\.0\.1:\d+\/orders\?sslmode=disable"/);
    expect(run.stderr).toMatch(/session ended/);
  });
});
