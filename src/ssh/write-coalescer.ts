/**
 * One syscall for the many small writes an SSH transport gets in one turn of the event loop.
 *
 * ssh2 writes every SSH packet to its socket on its own. With many channels on one connection
 * (eight pgbench clients through one tunnel), one poll of the event loop often produces a
 * packet for each: eight writes, eight loopback syscalls, each waking the peer. Here the first
 * write of a turn corks the socket and a setImmediate (after every I/O callback of that poll)
 * uncorks it, so the turn's packets leave in one writev. Nothing waits past the current turn.
 */
import type net from 'node:net';

/** Makes `socket` gather the writes of each event-loop turn into one. Call once per socket. */
export function coalesceWrites(socket: net.Socket): void {
  const write = socket.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function coalescedWrite(this: net.Socket, ...args: unknown[]): boolean {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as net.Socket['write'];
}
