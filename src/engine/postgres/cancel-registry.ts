/**
 * Maps the cancel keys the gateway hands to clients (BackendKeyData) to the upstream server's
 * keys. A client never learns the upstream key, and a CancelRequest is honoured only for a
 * key issued to the same session.
 */
import crypto from 'node:crypto';

/** What a CancelRequest needs to reach the upstream backend. */
export interface UpstreamCancelKey {
  sessionId: string;
  processId: number;
  secretKey: Buffer;
  /** Asks the connection itself first; true when it dealt with the cancel (nothing to send upstream). */
  interrupt?: () => boolean;
}

/** The key the client sees. */
export interface GatewayCancelKey {
  processId: number;
  secretKey: Buffer;
}

const keyOf = (processId: number, secretKey: Buffer): string => `${processId}:${secretKey.toString('hex')}`;

/** One per engine; entries live exactly as long as their client connection. */
export class CancelRegistry {
  private readonly entries = new Map<string, UpstreamCancelKey>();
  private readonly processIds = new Set<number>();

  /** Issues a fresh random gateway key for `upstream`; call the returned function on close. */
  issue(upstream: UpstreamCancelKey): { key: GatewayCancelKey; release: () => void } {
    let processId: number;
    do processId = crypto.randomInt(1, 0x7fffffff);
    while (this.processIds.has(processId));
    const secretKey = crypto.randomBytes(4);
    const id = keyOf(processId, secretKey);
    this.processIds.add(processId);
    this.entries.set(id, upstream);
    let released = false;
    return {
      key: { processId, secretKey },
      release: () => {
        if (released) return;
        released = true;
        this.entries.delete(id);
        this.processIds.delete(processId);
      },
    };
  }

  /** The upstream key for a client's CancelRequest, only if it was issued to `sessionId`. */
  lookup(processId: number, secretKey: Buffer, sessionId: string): UpstreamCancelKey | undefined {
    const entry = this.entries.get(keyOf(processId, secretKey));
    return entry !== undefined && entry.sessionId === sessionId ? entry : undefined;
  }

  get size(): number {
    return this.entries.size;
  }
}
