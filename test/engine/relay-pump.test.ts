// The relay pump on in-memory streams: how many writes, which bytes, in which order.
import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BackendFramer, BackendCode, readyForQuery } from '../../src/protocol/postgres/index.js';
import type { Frame } from '../../src/protocol/postgres/index.js';
import { Pump } from '../../src/engine/postgres/relay.js';
import { coalesce, pack } from '../../src/engine/write-spans.js';
import { passThroughHook, quietHold, type FrameHook, type RelayContext } from '../../src/engine/postgres/hooks.js';
import type { EngineSession } from '../../src/engine/engine.js';

/** A destination that records each write() call (with cork/uncork batches). */
class RecordingSink extends Duplex {
  writes: Buffer[] = [];
  batches: Buffer[][] = [];
  constructor(private readonly highWaterMark = 1 << 20) {
    super({ writableHighWaterMark: highWaterMark });
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.writes.push(chunk);
    done();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, done: () => void): void {
    this.batches.push(chunks.map((c) => c.chunk));
    for (const c of chunks) this.writes.push(c.chunk);
    done();
  }
}

const context: RelayContext = { session: {} as EngineSession, transactionStatus: 'I', sendToClient: () => undefined, sendToServer: () => undefined };

function dataRow(value: string): Buffer {
  const v = Buffer.from(value);
  const out = Buffer.alloc(1 + 4 + 2 + 4 + v.length);
  out[0] = BackendCode.DataRow;
  out.writeInt32BE(out.length - 1, 1);
  out.writeInt16BE(1, 5);
  out.writeInt32BE(v.length, 7);
  v.copy(out, 11);
  return out;
}

function startPump(hook: FrameHook, sink = new RecordingSink()) {
  const source = new PassThrough();
  const events: string[] = [];
  const pump = new Pump({
    source,
    destination: sink,
    framer: new BackendFramer(),
    hook,
    context,
    onSourceEnd: () => events.push('end'),
    onError: (err) => events.push(`error: ${(err as Error).message}`),
  });
  pump.start([]);
  return { source, sink, events, pump };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Pump', () => {
  it('writes the whole messages of a chunk as one buffer and holds a partial one', async () => {
    const { source, sink } = startPump(passThroughHook);
    const rows = [dataRow('a'), dataRow('bb'), dataRow('ccc')];
    const last = readyForQuery('I');
    const chunk = Buffer.concat([...rows, last.subarray(0, 3)]);
    source.write(chunk);
    await tick();
    expect(sink.writes).toHaveLength(1);
    expect(sink.writes[0]!.equals(Buffer.concat(rows))).toBe(true);
    expect(sink.writes[0]!.buffer).toBe(chunk.buffer); // a view, not a copy
    source.write(last.subarray(3));
    await tick();
    expect(Buffer.concat(sink.writes).equals(Buffer.concat([...rows, last]))).toBe(true);
  });

  it('forwards a replaced frame in place, corking the surrounding runs into one writev', async () => {
    const hook: FrameHook = {
      codes: new Set([BackendCode.DataRow]),
      inspect: (frame: Frame) => (frame.body.includes(Buffer.from('secret')) ? { forward: [dataRow('******')] } : undefined),
    };
    const { source, sink } = startPump(hook);
    source.write(Buffer.concat([dataRow('a'), dataRow('secret'), dataRow('b'), readyForQuery('I')]));
    await tick();
    expect(Buffer.concat(sink.writes).equals(Buffer.concat([dataRow('a'), dataRow('******'), dataRow('b'), readyForQuery('I')]))).toBe(true);
  });

  it('writes a chunk with many replaced frames as one buffer (an SSH channel sends each write as a packet)', async () => {
    const hook: FrameHook = { codes: new Set([BackendCode.DataRow]), inspect: (frame: Frame) => ({ forward: [dataRow(`#${frame.body.length}`)] }) };
    const { source, sink } = startPump(hook);
    const rows = Array.from({ length: 200 }, (_, i) => dataRow('x'.repeat(i % 7)));
    source.write(Buffer.concat([...rows, readyForQuery('I')]));
    await tick();
    expect(sink.writes).toHaveLength(1);
    expect(sink.writes[0]!.equals(Buffer.concat([...rows.map((r) => dataRow(`#${r.length - 5}`)), readyForQuery('I')]))).toBe(true);
  });

  it('holds the direction while an async hook decides, keeping order', async () => {
    let release: () => void = () => undefined;
    const hook: FrameHook = {
      codes: new Set([BackendCode.DataRow]),
      inspect: (frame: Frame) =>
        frame.body.includes(Buffer.from('wait')) ? new Promise((resolve) => (release = () => resolve({ forward: [dataRow('decided')] }))) : undefined,
    };
    const { source, sink } = startPump(hook);
    source.write(Buffer.concat([dataRow('1'), dataRow('wait'), dataRow('2')]));
    await tick();
    source.write(dataRow('3'));
    await tick();
    expect(Buffer.concat(sink.writes).equals(dataRow('1'))).toBe(true);
    release();
    await tick();
    await tick();
    expect(Buffer.concat(sink.writes).equals(Buffer.concat([dataRow('1'), dataRow('decided'), dataRow('2'), dataRow('3')]))).toBe(true);
  });


  it('a frame held for its audit write goes out in one write with the frames behind it (Parse with its Bind … Sync)', async () => {
    let release: () => void = () => undefined;
    const hook: FrameHook = {
      codes: new Set([BackendCode.DataRow]),
      inspect: (frame: Frame) => (frame.body.includes(Buffer.from('held')) ? new Promise((resolve) => (release = () => resolve(undefined))) : undefined),
    };
    const { source, sink } = startPump(hook);
    source.write(Buffer.concat([dataRow('held'), dataRow('a'), dataRow('b')]));
    await tick();
    expect(sink.writes).toHaveLength(0);
    release();
    await tick();
    expect(sink.writes).toHaveLength(1);
    expect(sink.writes[0]!.equals(Buffer.concat([dataRow('held'), dataRow('a'), dataRow('b')]))).toBe(true);
  });
  it('a quiet hold (an audit write, nothing sent meanwhile) takes the frames before it along: Parse, Bind … Execute, Sync in one write', async () => {
    let release: () => void = () => undefined;
    const hook: FrameHook = {
      codes: new Set([BackendCode.DataRow]),
      inspect: (frame: Frame) =>
        frame.body.includes(Buffer.from('execute')) ? quietHold(new Promise((resolve) => (release = () => resolve(undefined)))) : undefined,
    };
    const { source, sink } = startPump(hook);
    source.write(Buffer.concat([dataRow('parse'), dataRow('bind'), dataRow('execute'), dataRow('sync')]));
    await tick();
    expect(sink.writes).toHaveLength(0);
    release();
    await tick();
    expect(sink.writes).toHaveLength(1);
    expect(sink.writes[0]!.equals(Buffer.concat([dataRow('parse'), dataRow('bind'), dataRow('execute'), dataRow('sync')]))).toBe(true);
  });

  it('a quiet hold that ends in a reply to the source still writes the frames before it first, then its own', async () => {
    let release: () => void = () => undefined;
    const replies: Buffer[] = [];
    const sink = new RecordingSink();
    const source = new PassThrough();
    const originalWrite = source.write.bind(source);
    const hook: FrameHook = {
      codes: new Set([BackendCode.DataRow]),
      inspect: (frame: Frame) =>
        frame.body.includes(Buffer.from('refused')) ? quietHold(new Promise((resolve) => (release = () => resolve({ reply: [dataRow('error')], forward: [dataRow('instead')] })))) : undefined,
    };
    const pump = new Pump({ source, destination: sink, framer: new BackendFramer(), hook, context, onSourceEnd: () => undefined, onError: () => undefined });
    pump.start([]);
    (source as unknown as { write: (b: Buffer) => boolean }).write = (b: Buffer) => {
      replies.push(b);
      return true;
    };
    originalWrite(Buffer.concat([dataRow('before'), dataRow('refused'), dataRow('after')]));
    await tick();
    release();
    await tick();
    expect(Buffer.concat(sink.writes).equals(Buffer.concat([dataRow('before'), dataRow('instead'), dataRow('after')]))).toBe(true);
    expect(Buffer.concat(replies).equals(dataRow('error'))).toBe(true);
  });

  it('any other hold writes the frames before it at once, so a message the hook sends as the hold begins comes after them', async () => {
    const order: string[] = [];
    const sink = new RecordingSink();
    const injecting: RelayContext = { ...context, sendToServer: (messages) => void sink.write(Buffer.concat(messages)) };
    const hook: FrameHook = {
      codes: new Set([BackendCode.DataRow]),
      inspect: (frame: Frame, ctx: RelayContext) => {
        if (!frame.body.includes(Buffer.from('describe-first'))) return undefined;
        return (async () => {
          await Promise.resolve();
          ctx.sendToServer([dataRow('flush')]);
          order.push('injected');
          return undefined;
        })();
      },
    };
    const source = new PassThrough();
    const pump = new Pump({ source, destination: sink, framer: new BackendFramer(), hook, context: injecting, onSourceEnd: () => undefined, onError: () => undefined });
    pump.start([]);
    source.write(Buffer.concat([dataRow('parse'), dataRow('describe-first'), dataRow('sync')]));
    await tick();
    await tick();
    expect(order).toEqual(['injected']);
    expect(Buffer.concat(sink.writes).equals(Buffer.concat([dataRow('parse'), dataRow('flush'), dataRow('describe-first'), dataRow('sync')]))).toBe(true);
  });

  it('pauses the source while the destination is full and resumes on drain', async () => {
    let finishWrite: (() => void) | undefined;
    const slow = new Duplex({
      writableHighWaterMark: 16,
      read() {},
      write(_chunk, _enc, done) {
        finishWrite = done;
      },
    });
    const { source } = startPump(passThroughHook, slow as RecordingSink);
    source.write(dataRow('x'.repeat(100)));
    await tick();
    expect(source.isPaused()).toBe(true);
    finishWrite!();
    await tick();
    expect(source.isPaused()).toBe(false);
  });

  it('reports a framing error and stops', async () => {
    const { source, events } = startPump(passThroughHook);
    source.write(Buffer.from([0x44, 0, 0, 0, 1]));
    await tick();
    expect(events).toEqual(['error: backend DataRow length 1 is shorter than 4']);
  });

  it('ends after the source ends', async () => {
    const { source, events } = startPump(passThroughHook);
    source.end(readyForQuery('I'));
    await tick();
    expect(events).toEqual(['end']);
  });
});

describe('coalesce', () => {
  it('joins views that are adjacent in memory and keeps others apart', () => {
    const base = Buffer.from('aaabbbccc');
    const other = Buffer.from('ddd');
    const spans = coalesce([base.subarray(0, 3), base.subarray(3, 6), other, base.subarray(6, 9)]);
    expect(spans.map((s) => s.toString())).toEqual(['aaabbb', 'ddd', 'ccc']);
  });
});

describe('pack', () => {
  it('copies small spans together up to 64 KiB, leaves large ones as they are, keeps the order', () => {
    const small = Array.from({ length: 5 }, (_, i) => Buffer.alloc(20_000, i));
    const large = Buffer.alloc(70_000, 9);
    const packed = pack([...small, large, Buffer.from('tail')]);
    expect(packed.map((b) => b.length)).toEqual([60_000, 40_000, 70_000, 4]);
    expect(packed[2]).toBe(large);
    expect(Buffer.concat(packed).equals(Buffer.concat([...small, large, Buffer.from('tail')]))).toBe(true);
    const one = Buffer.from('x');
    expect(pack([one])[0]).toBe(one);
  });
});
