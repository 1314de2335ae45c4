// A byte-level PostgreSQL client for tests that need to misbehave or look at every byte the
// engine sends: built from the codec and our SCRAM client.
import net from 'node:net';
import {
  BackendFramer,
  StartupCode,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeStartupPacket,
  parseBackendMessage,
  type BackendMessage,
  type ErrorFields,
  type Frame,
} from '../../src/protocol/postgres/index.js';
import { ScramClient } from '../../src/protocol/postgres/scram.js';
import { FrameReader } from '../../src/engine/postgres/frame-reader.js';

export class RawPgClient {
  /** Every byte received, for scanning. */
  readonly received: Buffer[] = [];
  readonly closed: Promise<void>;
  private reader: FrameReader<BackendFramer> | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.received.push(d));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
  }

  static connect(port: number): Promise<RawPgClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      socket.once('error', reject);
      socket.once('connect', () => resolve(new RawPgClient(socket)));
    });
  }

  send(...buffers: Buffer[]): void {
    for (const b of buffers) this.socket.write(b);
  }

  /** Sends SSLRequest and returns the one-byte answer ('S' or 'N'). */
  requestSsl(): Promise<string> {
    this.send(encodeStartupPacket({ kind: 'ssl' }));
    return new Promise((resolve) => this.socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
  }

  next(): Promise<Frame> {
    this.reader ??= new FrameReader(this.socket, new BackendFramer(), 'the engine');
    return this.reader.next();
  }

  async nextMessage(): Promise<BackendMessage> {
    return parseBackendMessage(await this.next());
  }

  /** Reads until ReadyForQuery (returned last) or an ErrorResponse (throws its fields). */
  async untilReady(): Promise<BackendMessage[]> {
    const seen: BackendMessage[] = [];
    for (;;) {
      const frame = await this.next();
      const message = parseBackendMessage(frame);
      seen.push(message);
      if (message.type === 'ErrorResponse') throw new RawServerError(message.fields, seen);
      if (message.type === 'ReadyForQuery') return seen;
    }
  }

  /** Every message up to and including the next ReadyForQuery, errors included. */
  async collectUntilReady(): Promise<BackendMessage[]> {
    const seen: BackendMessage[] = [];
    for (;;) {
      const message = await this.nextMessage();
      seen.push(message);
      if (message.type === 'ReadyForQuery') return seen;
    }
  }

  /** Start-up and SCRAM, like libpq; returns everything up to and including ReadyForQuery. */
  async login(options: {
    user: string;
    database: string;
    password: string;
    protocolVersion?: number;
    params?: Record<string, string>;
    clientFirst?: (scram: ScramClient) => Buffer;
  }): Promise<BackendMessage[]> {
    this.send(
      encodeStartupPacket({
        kind: 'startup',
        protocolVersion: options.protocolVersion ?? StartupCode.Protocol3,
        params: { user: options.user, database: options.database, ...options.params },
      }),
    );
    const seen: BackendMessage[] = [];
    const scram = new ScramClient(options.password);
    for (;;) {
      const message = await this.nextMessage();
      seen.push(message);
      if (message.type === 'ErrorResponse') throw new RawServerError(message.fields, seen);
      if (message.type !== 'Authentication') continue;
      const request = message.request;
      if (request.kind === 'SASL') {
        this.send(encodeSASLInitialResponse('SCRAM-SHA-256', options.clientFirst?.(scram) ?? scram.clientFirstMessage()));
      } else if (request.kind === 'SASLContinue') {
        this.send(encodeSASLResponse(scram.clientFinalMessage(request.data)));
      } else if (request.kind === 'SASLFinal') {
        scram.verifyServerFinal(request.data);
      } else if (request.kind === 'Ok') {
        seen.push(...(await this.untilReady()));
        return seen;
      }
    }
  }

  /** Waits for the engine to close, returning the messages it sent until then. */
  async drainUntilClose(): Promise<BackendMessage[]> {
    const seen: BackendMessage[] = [];
    for (;;) {
      let frame: Frame;
      try {
        frame = await this.next();
      } catch {
        return seen;
      }
      seen.push(parseBackendMessage(frame));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export class RawServerError extends Error {
  constructor(
    readonly fields: ErrorFields,
    readonly seen: BackendMessage[],
  ) {
    super(`${fields['C']}: ${fields['M']}`);
  }
}

/** The fields of the first ErrorResponse among messages. */
export function firstError(messages: BackendMessage[]): ErrorFields | undefined {
  for (const m of messages) if (m.type === 'ErrorResponse') return m.fields;
  return undefined;
}
