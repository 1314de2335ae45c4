// Real bytes from a real server: a pg client talks to the local PostgreSQL through an in-test
// TCP relay that cuts both directions with the framers and forwards only the frames' raw bytes.
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BackendFramer,
  FrontendFramer,
  encodeBackendMessage,
  encodeFrontendMessage,
  encodeStartupPacket,
  parseBackendMessage,
  parseFrontendMessage,
  parseStartupPacket,
  type Frame,
} from '../../../src/protocol/postgres/index.js';

const PG_HOST = '127.0.0.1';
const PG_PORT = 5432;

async function reachable(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(PG_PORT, PG_HOST);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

interface Direction {
  seen: Buffer[];
  frames: Frame[];
}

/** One relay per test file: records each direction's bytes and frames. */
class FramingRelay {
  readonly toServer: Direction = { seen: [], frames: [] };
  readonly toClient: Direction = { seen: [], frames: [] };
  readonly errors: unknown[] = [];
  private readonly server = net.createServer((client) => this.relay(client));
  private readonly sockets = new Set<net.Socket>();

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect(PG_PORT, PG_HOST);
    this.sockets.add(client).add(upstream);
    this.pipe(client, upstream, new FrontendFramer(), this.toServer);
    this.pipe(upstream, client, new BackendFramer(), this.toClient);
  }

  private pipe(from: net.Socket, to: net.Socket, framer: FrontendFramer | BackendFramer, d: Direction): void {
    from.on('data', (chunk: Buffer) => {
      d.seen.push(Buffer.from(chunk));
      try {
        for (const frame of framer.push(chunk)) {
          d.frames.push({ code: frame.code, raw: Buffer.from(frame.raw), body: Buffer.from(frame.body) });
          to.write(frame.raw);
        }
      } catch (err) {
        this.errors.push(err);
        from.destroy();
        to.destroy();
      }
    });
    from.on('end', () => to.end());
    from.on('error', () => to.destroy());
  }
}

const available = await reachable();

describe.skipIf(!available)('frames captured from a real PostgreSQL', () => {
  const relay = new FramingRelay();
  const notices: string[] = [];
  const notifications: string[] = [];

  beforeAll(async () => {
    const port = await relay.listen();
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', application_name: 'hoopctl-codec-test' });
    client.on('notice', (n) => notices.push(n.message ?? ''));
    client.on('notification', (n) => notifications.push(`${n.channel}:${n.payload}`));
    await client.connect();

    expect((await client.query("select 1 as one, 'x'::text as t, null::int as n")).rows).toEqual([{ one: 1, t: 'x', n: null }]);
    expect((await client.query('select $1::int + 1 as n, $2::text as s', [41, 'héllo ✓'])).rows).toEqual([{ n: 42, s: 'héllo ✓' }]);
    for (const v of ['a', 'b']) {
      expect((await client.query({ name: 's1', text: 'select $1::text as v', values: [v] })).rows).toEqual([{ v }]);
    }
    await expect(client.query('select 1/0')).rejects.toMatchObject({ code: '22012' });
    await client.query("do $$ begin raise notice 'hello %', 7; end $$");
    await client.query('');
    await client.query('begin');
    await client.query('commit');
    await client.query('listen codec_test');
    await client.query("notify codec_test, 'payload'");
    expect((await client.query('select count(*)::int as c from generate_series(1, 20000) g, lateral (select repeat(g::text, 20)) r')).rows).toEqual([{ c: 20000 }]);
    expect((await client.query('select g, repeat(md5(g::text), 4) as s from generate_series(1, 3000) g')).rows).toHaveLength(3000);
    expect((await client.query('copy (select g from generate_series(1, 3) g) to stdout')).rowCount).toBe(3);
    await client.query('create temp table codec_copy (a int)');
    await expect(client.query('copy codec_copy from stdin')).rejects.toThrow(/No source stream defined/); // pg answers CopyInResponse with CopyFail
    const big = 'x'.repeat(300_000);
    expect((await client.query('select length($1::text) as n', [big])).rows).toEqual([{ n: 300_000 }]);
    expect((await client.query(`select length('${big}') as n`)).rows).toEqual([{ n: 300_000 }]);
    await client.end();
    await new Promise((resolve) => setTimeout(resolve, 50));
  });

  afterAll(() => relay.close());

  it('relays a whole session with no framing error', () => {
    expect(relay.errors).toEqual([]);
    expect(notices).toEqual(['hello 7']);
    expect(notifications).toEqual(['codec_test:payload']);
  });

  it.each([
    ['client → server', () => relay.toServer],
    ['server → client', () => relay.toClient],
  ])('%s: the frames are the bytes seen, byte for byte', (_name, direction) => {
    const d = direction();
    expect(d.frames.length).toBeGreaterThan(10);
    expect(Buffer.concat(d.frames.map((f) => f.raw)).equals(Buffer.concat(d.seen))).toBe(true);
  });

  it('every client frame decodes and re-encodes to the same bytes', () => {
    const types = new Set<string>();
    const differing: string[] = [];
    for (const frame of relay.toServer.frames) {
      const [type, encoded] =
        frame.code === 0
          ? ((p) => [p.kind, encodeStartupPacket(p)] as const)(parseStartupPacket(frame))
          : ((m) => [m.type, encodeFrontendMessage(m)] as const)(parseFrontendMessage(frame));
      types.add(type);
      if (!encoded.equals(frame.raw)) differing.push(type);
    }
    expect(differing).toEqual([]);
    expect([...types].sort()).toEqual(['Bind', 'CopyFail', 'Describe', 'Execute', 'Parse', 'Query', 'Sync', 'Terminate', 'startup'].sort());
  });

  it('every server frame decodes and re-encodes to the same bytes', () => {
    const types = new Set<string>();
    const differing: string[] = [];
    for (const frame of relay.toClient.frames) {
      const m = parseBackendMessage(frame);
      types.add(m.type);
      if (!encodeBackendMessage(m).equals(frame.raw)) differing.push(m.type);
    }
    expect(differing).toEqual([]);
    for (const t of [
      'Authentication',
      'ParameterStatus',
      'BackendKeyData',
      'ReadyForQuery',
      'RowDescription',
      'DataRow',
      'CommandComplete',
      'ParseComplete',
      'BindComplete',
      'ErrorResponse',
      'NoticeResponse',
      'NotificationResponse',
      'EmptyQueryResponse',
      'CopyOutResponse',
      'CopyData',
      'CopyDone',
      'CopyInResponse',
    ]) {
      expect(types).toContain(t);
    }
  });

  it('saw messages that spanned several TCP chunks', () => {
    const spanning = relay.toClient.frames.filter((f) => f.raw.length > 65_536).length + relay.toServer.frames.filter((f) => f.raw.length > 65_536).length;
    expect(spanning).toBeGreaterThan(0);
  });
});
