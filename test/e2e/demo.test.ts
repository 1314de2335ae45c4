import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { finished, runHoopctl, spawnHoopctl } from '../helpers/cli-process.js';

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
    // 4. policy refuses in the protocol and the transaction goes on
    expect(run.stdout).toContain('refused (42501): hoop: blocked by rule "bounded-writes": UPDATE without WHERE on public.orders');
    expect(run.stdout).toContain('refused (42501): hoop: blocked by rule "no-files": SELECT: calls pg_read_file');
    expect(run.stdout).toContain('COMMIT answers ROLLBACK: nothing of the transaction was kept');
    // 5. DDL held for review: one approved by the DBA, one rejected with a reason
    expect(run.stdout).toMatch(/NOTICE: hoop: statement held for review rev_\S+ \(rule "no-ddl"\): CREATE on public\.agent_notes\n\s+ran after approval/);
    expect(run.stdout).toMatch(/refused \(42501\): hoop: statement rejected by dba@hoop\.local \(review rev_\S+\): orders is the system of record/);
    // 6. masking: hashed emails, redacted SSNs, computed values masked, detection in free text
    expect(run.stdout).toMatch(/Ada Lovelace\s+h:[0-9a-f]{16}\s+\+\* \*\*\* \*\*\* 0101\s+\[redacted\]/);
    expect(run.stdout).toMatch(/h:[0-9a-f]{16}\s+\(computed from customers\.email: masked as it is\)/);
    expect(run.stdout).toContain('write to [redacted:email] about card [redacted:credit_card]');
    expect(run.stdout).not.toContain('MOC.ELPMAXE');
    expect(run.stdout).not.toContain('ada@example.com');
    // 7. the audit log replays the session and its chain verifies
    expect(run.stdout).toMatch(/masked: column:\*\.phone 3, column:customers\.email 3, column:customers\.ssn 2/);
    expect(run.stdout).toMatch(/audit verify --session ses_\S+: ok, \d+ events chained/);
    expect(run.stdout).toMatch(/PGPASSWORD=[A-Za-z0-9_-]+ psql "postgresql:\/\/app@127\.0\.0\.1:\d+\/orders\?sslmode=disable"/);
    expect(run.stderr).toMatch(/session ended/);
    // How to approve as the reviewer it seeds, by hand.
    expect(run.stdout).toMatch(/approve it yourself as the seeded reviewer dba@hoop\.local, already logged in:\n {2}XDG_CONFIG_HOME=\S+\/reviewer hoopctl reviews --pending\n/);
  });

  it('Ctrl-C during the tour leaves no temp folders (regression: hoop-demo-* with token files stayed behind)', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hoop-demo-tmp-'));
    fs.chmodSync(tmp, 0o755); // the embedded server runs as another user when we are root
    try {
      const demo = spawnHoopctl(['demo'], { HOME: process.env.HOME ?? '/tmp', TMPDIR: tmp });
      const done = finished(demo, 120_000);
      const seen: string[] = (demo as unknown as { collected: { stderr: string[] } }).collected.stderr;
      const deadline = Date.now() + 90_000;
      while (!seen.join('').includes('1. A query through the tunnel') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(fs.readdirSync(tmp).some((name) => name.startsWith('hoop-demo-'))).toBe(true);
      demo.kill('SIGINT');
      await done;
      expect(fs.readdirSync(tmp).filter((name) => name.startsWith('hoop-'))).toEqual([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
