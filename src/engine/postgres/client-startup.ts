/**
 * The client's start-up packets (PostgreSQL docs, "Message Flow" → "Start-up", "SSL Session
 * Encryption", "GSSAPI Session Encryption", "Canceling Requests in Progress"). SSLRequest and
 * GSSENCRequest are answered 'N' and the next packet is read; a StartupMessage or a
 * CancelRequest ends the phase.
 */
import { parseStartupPacket, type FrontendFramer } from '../../protocol/postgres/index.js';
import type { FrameReader } from './frame-reader.js';
import { ENCRYPTION_REFUSED } from './wire.js';

export type ClientStartup =
  | { kind: 'startup'; protocolVersion: number; params: Record<string, string> }
  | { kind: 'cancel'; processId: number; secretKey: Buffer };

/** Reads start-up packets until a StartupMessage or CancelRequest. Throws ProtocolError on bad bytes. */
export async function readClientStartup(reader: FrameReader<FrontendFramer>, write: (bytes: Buffer) => void): Promise<ClientStartup> {
  for (;;) {
    const packet = parseStartupPacket(await reader.next());
    if (packet.kind === 'ssl' || packet.kind === 'gssenc') {
      write(ENCRYPTION_REFUSED);
      continue;
    }
    return packet;
  }
}
