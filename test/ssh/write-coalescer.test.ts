import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { coalesceWrites } from '../../src/ssh/write-coalescer.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A connected TCP pair on loopback; `received` collects what the server side reads. */
async function pair(): Promise<{ client: net.Socket; received: () => Buffer; ended: Promise<void> }> {
  const chunks: Buffer[] = [];
  let onEnd!: () => void;
  const ended = new Promise<void>((resolve) => (onEnd = resolve));
  const server = net.createServer((s) => s.on('data', (d: Buffer) => chunks.push(d)).on('end', () => onEnd()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  cleanups.push(() => {
    client.destroy();
    server.close();
  });
  return { client, received: () => Buffer.concat(chunks), ended };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('coalesceWrites', () => {
  it('sends the writes of one event-loop turn in one writev, in order', async () => {
    const { client, received } = await pair();
    coalesceWrites(client);
    const writev = vi.spyOn(client as unknown as { _writev: (...a: unknown[]) => void }, '_writev');
    const write = vi.spyOn(client as unknown as { _write: (...a: unknown[]) => void }, '_write');
    for (const part of ['one ', 'two ', 'three ', 'four']) client.write(part);
    expect(writev).not.toHaveBeenCalled();
    await turn();
    expect(writev).toHaveBeenCalledTimes(1);
    expect((writev.mock.calls[0]![0] as unknown[]).length).toBe(4);
    expect(write).not.toHaveBeenCalled();
    // The next turn's writes go out in that turn.
    client.write(' five');
    await turn();
    for (let i = 0; i < 50 && received().length < 23; i++) await new Promise((r) => setTimeout(r, 5));
    expect(received().toString()).toBe('one two three four five');
  });

  it('keeps write callbacks and end() working', async () => {
    const { client, received, ended } = await pair();
    coalesceWrites(client);
    const done = new Promise<void>((resolve) => client.write('a', () => resolve()));
    client.end('b');
    await done;
    await ended;
    expect(received().toString()).toBe('ab');
  });
});
