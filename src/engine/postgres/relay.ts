/**
 * The relay phase: two pumps, client → database and database → client. Each pump frames its
 * source, lets the hook look at the frames it asked for, and writes every run of untouched
 * frames with as few writes as possible: frames that sit next to each other in memory (the
 * usual case: one socket chunk holding many messages) go out as one buffer, and several
 * buffers are corked into one writev. Only whole messages are ever written, so the engine can
 * inject a message (an ErrorResponse, a Terminate) between them at any time.
 *
 * Backpressure: a pump pauses its source while the destination's buffer is full (write()
 * returned false), and resumes on 'drain'. While a hook holds a frame the pump goes on reading
 * into a backlog (processed in order once the hook settles) until the backlog passes
 * MAX_HELD_BACKLOG; reading on lets it hear the source end during a long hold (a statement
 * waiting for a reviewer while its client hangs up).
 */
import type { Duplex } from 'node:stream';
import type { Frame } from '../../protocol/postgres/frame.js';
import { isQuietHold, type FrameDecision, type FrameHook, type HookResult, type RelayContext } from './hooks.js';
import type { Framer } from './frame-reader.js';
import { coalesce, pack } from '../write-spans.js';

export interface PumpOptions {
  source: Duplex;
  destination: Duplex;
  framer: Framer;
  hook: FrameHook;
  context: RelayContext;
  /**
   * Sees every frame before the hook, in order. Returning false stops the pump after the
   * frame is forwarded (the client's Terminate).
   */
  observe?: (frame: Frame) => boolean;
  /** The source ended and everything read was written: time to end the destination. */
  onSourceEnd: () => void;
  /** The framer or a hook failed; the pump has stopped. */
  onError: (err: unknown) => void;
  /** The pump stopped after `observe` returned false. */
  onStopped?: () => void;
  /** The source ended while a hook held a frame (`onSourceEnd` follows once the hold settles). */
  onSourceEndWhileHolding?: () => void;
}

/** Bytes read ahead while a hook holds a frame, before the source is paused. */
export const MAX_HELD_BACKLOG = 1024 * 1024;

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/** One direction of the relay. */
export class Pump {
  private stopped = false;
  private holding = false;
  private backpressured = false;
  private sourceEnded = false;
  /** Frames cut while a hook was holding, processed in order once it settles. */
  private backlog: Frame[] = [];
  private backlogBytes = 0;
  private readonly wants: ReadonlySet<number> | undefined;

  private readonly onData = (chunk: Buffer): void => {
    let frames: Frame[];
    try {
      frames = this.options.framer.push(chunk);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.holding) {
      for (const frame of frames) this.backlog.push(frame);
      this.backlogBytes += chunk.length;
      if (this.backlogBytes > MAX_HELD_BACKLOG) this.updateFlow();
      return;
    }
    this.process(frames, 0);
  };

  private readonly onEnd = (): void => {
    this.sourceEnded = true;
    if (this.holding) this.options.onSourceEndWhileHolding?.();
    this.maybeFinish();
  };

  private readonly onDrain = (): void => {
    this.backpressured = false;
    this.updateFlow();
  };

  constructor(private readonly options: PumpOptions) {
    this.wants = options.hook.codes;
  }

  /** Processes frames read before the relay began, then starts reading the source. */
  start(pending: Frame[]): void {
    const { source, destination } = this.options;
    destination.on('drain', this.onDrain);
    source.on('data', this.onData);
    source.on('end', this.onEnd);
    this.process(pending, 0);
    this.updateFlow();
  }

  /** Stops reading and writing; frames not yet written are dropped. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.backlog = [];
    this.backlogBytes = 0;
    const { source, destination } = this.options;
    source.off('data', this.onData);
    source.off('end', this.onEnd);
    destination.off('drain', this.onDrain);
    source.pause();
  }

  /** `run`: frames already decided that go out in the same write as what follows them. */
  private process(frames: Frame[], start: number, run: Buffer[] = []): void {
    const { hook, context, observe } = this.options;
    for (let i = start; i < frames.length; i++) {
      if (this.stopped) return;
      const frame = frames[i]!;
      const keepGoing = observe === undefined ? true : observe(frame);
      let result: HookResult | Promise<HookResult> = undefined;
      if (this.wants === undefined || this.wants.has(frame.code)) {
        try {
          result = hook.inspect(frame, context);
        } catch (err) {
          this.fail(err);
          return;
        }
      }
      if (result === undefined) {
        run.push(frame.raw);
      } else if (isPromise(result)) {
        // Frames decided before a hold go now, unless the hold promises to send nothing meanwhile.
        if (!isQuietHold(result)) {
          this.write(run);
          run = [];
        }
        this.hold(result, frame, frames, i + 1, keepGoing, run);
        return;
      } else if (result.reply === undefined || result.reply.length === 0) {
        // A replaced frame (a masked row) goes out with its neighbours, in the same write.
        for (const raw of result.forward) run.push(raw);
      } else {
        this.write(run);
        run = [];
        this.apply(result);
      }
      if (!keepGoing) {
        this.write(run);
        this.finishEarly();
        return;
      }
    }
    this.write(run);
    this.maybeFinish();
  }

  /** `before`: frames decided before this one and not yet written (a quiet hold's). */
  private hold(result: Promise<HookResult>, frame: Frame, frames: Frame[], next: number, keepGoing: boolean, before: Buffer[]): void {
    this.holding = true;
    this.updateFlow();
    result.then(
      (decision) => {
        if (this.stopped) return;
        this.holding = false;
        // What is forwarded goes out with the frames around it (Parse, Bind … Execute, Sync): one write.
        const run = decision === undefined ? [...before, frame.raw] : decision.reply === undefined || decision.reply.length === 0 ? [...before, ...decision.forward] : undefined;
        if (run === undefined) {
          this.write(before);
          this.apply(decision!);
        }
        if (!keepGoing) {
          if (run !== undefined) this.write(run);
          this.finishEarly();
          return;
        }
        const rest = frames.slice(next);
        for (const f of this.backlog) rest.push(f);
        this.backlog = [];
        this.backlogBytes = 0;
        this.process(rest, 0, run);
        this.updateFlow();
      },
      (err: unknown) => this.fail(err),
    );
  }

  private apply(decision: FrameDecision): void {
    if (decision.reply !== undefined && decision.reply.length > 0) {
      this.writeTo(this.options.source, decision.reply, false);
    }
    this.write(decision.forward);
  }

  private write(raws: Buffer[]): void {
    if (raws.length === 0) return;
    if (!this.writeTo(this.options.destination, raws, true)) {
      this.backpressured = true;
      this.updateFlow();
    }
  }

  /** Returns false when the stream's buffer is full. */
  private writeTo(stream: Duplex, raws: Buffer[], merge: boolean): boolean {
    if (stream.writableEnded || stream.destroyed) return true;
    const spans = merge ? pack(coalesce(raws)) : raws;
    if (spans.length === 1) return stream.write(spans[0]!);
    stream.cork();
    let ok = true;
    for (const span of spans) ok = stream.write(span);
    stream.uncork();
    return ok;
  }

  private updateFlow(): void {
    const { source } = this.options;
    if (this.stopped || this.backpressured || (this.holding && this.backlogBytes > MAX_HELD_BACKLOG)) source.pause();
    else source.resume();
  }

  private maybeFinish(): void {
    if (this.sourceEnded && !this.holding && !this.stopped) {
      this.stop();
      this.options.onSourceEnd();
    }
  }

  private finishEarly(): void {
    this.stop();
    this.options.onStopped?.();
  }

  private fail(err: unknown): void {
    if (this.stopped) return;
    this.stop();
    this.options.onError(err);
  }
}
