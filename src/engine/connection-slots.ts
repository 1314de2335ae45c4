/**
 * How many database connections the engine holds open, per session and in all: one session
 * must not exhaust the server's `max_connections` and fail everyone else's logins. A client
 * takes a slot once it has authenticated (so a stranger who found the local port cannot use
 * up the session's slots) and before anything is opened upstream. A refusal is the text to say;
 * each engine says it as its server would (PostgreSQL: SQLSTATE 53300 too_many_connections;
 * MySQL: error 1040 ER_CON_COUNT_ERROR).
 */

export interface SlotRefusal {
  message: string;
  hint: string;
}

export type SlotGrant = { ok: true; release: () => void } | { ok: false; refusal: SlotRefusal };

export class ConnectionSlots {
  private total = 0;
  private readonly bySession = new Map<string, number>();

  /** `maxTotal`: every session of this connection together (undefined: no limit). */
  constructor(
    private readonly connection: string,
    private readonly maxTotal: number | undefined,
  ) {}

  /** A slot for one more connection of the session, or the refusal to send the client. */
  acquire(sessionId: string, maxForSession: number | undefined): SlotGrant {
    const held = this.bySession.get(sessionId) ?? 0;
    if (maxForSession !== undefined && held >= maxForSession) {
      return {
        ok: false,
        refusal: {
          message: `hoop: this session already has ${held} database connections open, its limit on connection "${this.connection}"`,
          hint: 'close connections you no longer use or make your pool smaller; the gateway operator sets access.maxConnections',
        },
      };
    }
    if (this.maxTotal !== undefined && this.total >= this.maxTotal) {
      return {
        ok: false,
        refusal: {
          message: `hoop: connection "${this.connection}" already has ${this.total} database connections open through this gateway, its limit`,
          hint: 'try again once other sessions have closed theirs; the gateway operator sets maxConnections on the connection',
        },
      };
    }
    this.total++;
    this.bySession.set(sessionId, held + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.bySession.get(sessionId) ?? 1) - 1;
        if (left <= 0) this.bySession.delete(sessionId);
        else this.bySession.set(sessionId, left);
      },
    };
  }

  /** Connections held now: in all, or by one session. */
  held(sessionId?: string): number {
    return sessionId === undefined ? this.total : (this.bySession.get(sessionId) ?? 0);
  }
}
