/**
 * Whole MySQL packets from a stream, pulled one at a time during the connection phase (the
 * stream flows only while someone waits, so a peer that sends ahead cannot make the engine hold
 * more than a chunk), then pushed to a handler once the relay takes over.
 */
import type { Duplex } from 'node:stream';
import { HoopError } from '../../errors.js';
import { encodePacket, PacketFramer, type Packet } from '../../protocol/mysql/index.js';

/** The stream ended before the packet the caller waited for. */
export class PeerClosedError extends HoopError {
  constructor(peer: string) {
    super('network', 'stream_ended', `${peer} closed the connection`);
    this.name = 'PeerClosedError';
  }
}

export class PacketStream {
  private readonly queue: Packet[] = [];
  private failure: unknown;
  private waiter: { resolve: (p: Packet) => void; reject: (err: unknown) => void } | undefined;
  private handler: ((p: Packet) => void) | undefined;
  private onFailure: ((err: unknown) => void) | undefined;
  private around: (deliver: () => void) => void = (deliver) => deliver();
  private readonly framer: PacketFramer;

  private readonly onData = (chunk: Buffer): void => {
    let packets: Packet[];
    try {
      packets = this.framer.push(chunk);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.queue.push(...packets);
    this.deliver();
  };
  private readonly onEnd = (): void => this.fail(new PeerClosedError(this.peer));
  private readonly onError = (err: Error): void => this.fail(err);

  constructor(
    readonly stream: Duplex,
    /** Who is on the other end, for errors: "the client", "the database". */
    private readonly peer: string,
    maxPayload?: number,
  ) {
    this.framer = new PacketFramer(maxPayload === undefined ? {} : { maxPayload });
    stream.pause();
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
  }

  /** The next packet; rejects with MysqlProtocolError, PeerClosedError or the stream's error. */
  next(): Promise<Packet> {
    const packet = this.queue.shift();
    if (packet !== undefined) return Promise.resolve(packet);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.stream.resume();
    });
  }

  /**
   * From now on every packet goes to `handler` as it arrives (queued ones first); `failed` hears
   * of the end or an error once. `around` runs each chunk's packets (e.g. corking the stream they
   * are relayed to, so they leave in one write).
   */
  flow(handler: (p: Packet) => void, failed: (err: unknown) => void, around: (deliver: () => void) => void = (deliver) => deliver()): void {
    this.handler = handler;
    this.around = around;
    this.onFailure = failed;
    this.deliver();
    if (this.failure !== undefined) failed(this.failure);
    else this.stream.resume();
  }

  /** Stops reading (back-pressure from the other side). */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    if (this.handler !== undefined || this.waiter !== undefined) this.stream.resume();
  }

  /** Stops listening and hands the stream over (e.g. to TLS); nothing may be queued. */
  release(): Duplex {
    if (this.queue.length > 0) throw new HoopError('protocol', 'unexpected_packet', `${this.peer} sent data ahead of its turn`);
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onError);
    this.stream.pause();
    return this.stream;
  }

  /** Writes one payload as packet(s) from `seq`; returns the next sequence id. */
  send(payload: Buffer, seq: number): number {
    const { bytes, nextSeq } = encodePacket(payload, seq);
    this.stream.write(bytes);
    return nextSeq;
  }

  private deliver(): void {
    if (this.handler !== undefined) {
      if (this.queue.length === 0) return;
      this.around(() => {
        while (this.queue.length > 0) this.handler!(this.queue.shift()!);
      });
      return;
    }
    if (this.waiter === undefined || this.queue.length === 0) return;
    const { resolve } = this.waiter;
    this.waiter = undefined;
    this.stream.pause();
    resolve(this.queue.shift()!);
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    if (this.waiter !== undefined) {
      const { reject } = this.waiter;
      this.waiter = undefined;
      reject(err);
    }
    if (this.handler !== undefined && this.queue.length === 0) this.onFailure?.(err);
  }
}
