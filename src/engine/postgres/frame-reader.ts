/**
 * Pull-style reading of whole protocol frames from a stream, for the sequential start-up and
 * authentication phases. The stream flows only while someone waits for a frame, so a client
 * that pipelines ahead of authentication cannot make the engine buffer more than a chunk.
 * `detach()` hands the framer and any frames already read to the relay.
 */
import type { Duplex } from 'node:stream';
import type { Frame } from '../../protocol/postgres/frame.js';
import { HoopError } from '../../errors.js';

/** Anything that cuts bytes into frames (FrontendFramer, BackendFramer). */
export interface Framer {
  push(chunk: Buffer): Frame[];
}

/** The stream ended (or closed) before the frame the caller waited for. */
export class StreamEndedError extends HoopError {
  constructor(what: string) {
    super('network', 'stream_ended', `${what} closed the connection`);
    this.name = 'StreamEndedError';
  }
}

export class FrameReader<F extends Framer = Framer> {
  private readonly queue: Frame[] = [];
  private failure: unknown;
  private waiter: { resolve: (frame: Frame) => void; reject: (err: unknown) => void } | undefined;
  private detached = false;

  private readonly onData = (chunk: Buffer): void => {
    let frames: Frame[];
    try {
      frames = this.framer.push(chunk);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.queue.push(...frames);
    this.deliver();
  };
  private readonly onEnd = (): void => this.fail(new StreamEndedError(this.peer));

  constructor(
    private readonly stream: Duplex,
    readonly framer: F,
    /** Who is on the other end, for errors: "the client", "the database". */
    private readonly peer: string,
  ) {
    stream.pause();
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
  }

  /** The next whole frame; rejects with ProtocolError, StreamEndedError or the stream's error. */
  next(): Promise<Frame> {
    if (this.detached) return Promise.reject(new Error('FrameReader used after detach'));
    const frame = this.queue.shift();
    if (frame !== undefined) return Promise.resolve(frame);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.waiter !== undefined) return Promise.reject(new Error('FrameReader.next called concurrently'));
    return new Promise<Frame>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.stream.resume();
    });
  }

  /** Makes a pending or future next() fail with `err` (e.g. on a timeout or terminate). */
  fail(err: unknown): void {
    if (this.failure === undefined) this.failure = err;
    this.deliver();
  }

  /** Stops reading; returns the frames already cut and not yet consumed. The stream stays paused. */
  detach(): Frame[] {
    this.detached = true;
    this.stream.pause();
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    return this.queue.splice(0);
  }

  private deliver(): void {
    const waiter = this.waiter;
    if (waiter === undefined) {
      if (this.queue.length > 0) this.stream.pause();
      return;
    }
    const frame = this.queue.shift();
    if (frame !== undefined) {
      this.waiter = undefined;
      if (this.queue.length > 0) this.stream.pause();
      waiter.resolve(frame);
    } else if (this.failure !== undefined) {
      this.waiter = undefined;
      waiter.reject(this.failure);
    }
  }
}
