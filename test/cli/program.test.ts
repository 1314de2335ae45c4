import { describe, expect, it } from 'vitest';
import type { CliDeps } from '../../src/cli/context.js';
import { COMMANDS, buildersFor, type CommandBuilder, type CommandEntry } from '../../src/cli/program.js';

/** Entries that say which were loaded, without loading any command module. */
function fakeEntries() {
  const loaded: string[] = [];
  const entries: CommandEntry[] = ['login', 'connect', 'status'].map((name) => ({
    name,
    load: async () => {
      loaded.push(name);
      return (() => ({ name })) as unknown as CommandBuilder;
    },
  }));
  return { entries, loaded };
}

describe('buildersFor: a command loads only its own modules', () => {
  it.each([
    [['--version'], []],
    [['-v'], []],
    [['--json', '--gateway', 'https://gw.example', '--version'], []],
    [['connect', 'orders-db', '--', 'psql', '--help'], ['connect']],
    [['--gateway', 'connect', 'status'], ['status']],
    [['--gateway=https://gw.example', '--no-color', 'status', '--json'], ['status']],
    [['--ca', 'ca.pem', 'login'], ['login']],
    [[], ['login', 'connect', 'status']],
    [['--help'], ['login', 'connect', 'status']],
    [['--version', '--help'], ['login', 'connect', 'status']],
    [['help', 'connect'], ['login', 'connect', 'status']],
    [['conect'], ['login', 'connect', 'status']],
    [['--json'], ['login', 'connect', 'status']],
    [['--frobnicate', 'connect'], ['login', 'connect', 'status']],
  ])('%j loads %j', async (argv, expected) => {
    const { entries, loaded } = fakeEntries();
    const builders = await buildersFor(argv, entries);
    expect(loaded).toEqual(expected);
    expect(builders).toHaveLength(expected.length);
  });

  it.each(COMMANDS.map((c) => [c.name, c] as const))('the %s entry loads the builder of the command of that name', async (name, entry) => {
    expect((await entry.load())({} as CliDeps).name()).toBe(name);
  });
});
