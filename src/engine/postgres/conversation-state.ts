/**
 * What the engine knows about the conversation it relays, from message types alone
 * (PostgreSQL docs, "Message Flow" → "Simple Query", "Extended Query"): the transaction status
 * of the latest ReadyForQuery, and whether the server still owes one (a statement is running),
 * so a terminate can cancel it instead of waiting for it.
 */
import { BackendCode, FrontendCode, type Frame } from '../../protocol/postgres/index.js';
import type { TransactionStatus } from './hooks.js';

export class ConversationState {
  transactionStatus: TransactionStatus = 'I';
  /** Query, Sync and FunctionCall each earn one ReadyForQuery. */
  private readyOwed = 0;
  /** Extended-protocol messages sent since the last Sync (they run on Execute + Flush too). */
  private extendedPending = false;

  /** True while the server may be working on something the client sent. */
  get busy(): boolean {
    return this.readyOwed > 0 || this.extendedPending;
  }

  /** Sees a client → server frame. Returns false for Terminate (nothing may follow it). */
  frontend(frame: Frame): boolean {
    switch (frame.code) {
      case FrontendCode.Query:
      case FrontendCode.FunctionCall:
        this.readyOwed++;
        return true;
      case FrontendCode.Sync:
        this.readyOwed++;
        this.extendedPending = false;
        return true;
      case FrontendCode.Parse:
      case FrontendCode.Bind:
      case FrontendCode.Describe:
      case FrontendCode.Execute:
      case FrontendCode.Close:
        this.extendedPending = true;
        return true;
      case FrontendCode.Terminate:
        return false;
      default:
        return true;
    }
  }

  /** Sees a server → client frame. */
  backend(frame: Frame): void {
    if (frame.code !== BackendCode.ReadyForQuery) return;
    this.transactionStatus = transactionStatusOf(frame.body);
    if (this.readyOwed > 0) this.readyOwed--;
  }
}

/** The status byte of a ReadyForQuery body. */
export function transactionStatusOf(body: Buffer): TransactionStatus {
  const status = body[0];
  return status === 0x54 ? 'T' : status === 0x45 ? 'E' : 'I';
}
