// Client commands: MySQL "Text Protocol" and "Prepared Statements" command packets.
//
//   COM_QUERY          0x03 | query text (no CLIENT_QUERY_ATTRIBUTES: the gateway never offers it)
//   COM_INIT_DB        0x02 | schema name
//   COM_STMT_PREPARE   0x16 | query text
//   COM_STMT_EXECUTE   0x17 | int4 statement id | int1 flags | int4 iterations (1)
//                            [n > 0: NULL bitmap ((n + 7) / 8) | int1 new-params-bound | types 2×n | values]
//   COM_STMT_CLOSE / RESET / FETCH / SEND_LONG_DATA    0x19 / 0x1a / 0x1c / 0x18 | int4 statement id …
import { Command } from './codes.js';
import { PacketReader } from './packet-reader.js';
import { PacketWriter } from './packet-writer.js';
import { binaryValueText, readBinaryValue, UNSIGNED_FLAG } from './resultset.js';

/** Text carried by COM_QUERY, COM_STMT_PREPARE and COM_INIT_DB. */
export function commandText(payload: Buffer): string {
  return payload.toString('utf8', 1);
}

export function encodeTextCommand(command: number, text: string): Buffer {
  return new PacketWriter().int1(command).string(text).payload();
}

/** The statement id of COM_STMT_EXECUTE, CLOSE, RESET, FETCH and SEND_LONG_DATA. */
export function commandStatementId(payload: Buffer): number {
  const r = new PacketReader(payload, 'statement command');
  r.int1('command');
  return r.int4('statement id');
}

export interface StmtExecute {
  statementId: number;
  flags: number;
  /** Parameter types (type | unsigned << 15) sent with this execute, when new-params-bound is 1. */
  types?: number[];
  /** Parameter values as text (null for NULL, undefined where a type is unknown or long data was sent). */
  params: (string | null)[];
}

/**
 * Decodes COM_STMT_EXECUTE for a statement with `paramCount` parameters; `previousTypes` are the
 * types bound by an earlier execute (used when this one does not rebind); `longData` the
 * parameters whose values came in COM_STMT_SEND_LONG_DATA (absent from this packet).
 */
export function decodeStmtExecute(payload: Buffer, paramCount: number, previousTypes?: readonly number[], longData?: ReadonlySet<number>): StmtExecute {
  const r = new PacketReader(payload, 'COM_STMT_EXECUTE');
  if (r.int1('command') !== Command.STMT_EXECUTE) throw r.fail('not COM_STMT_EXECUTE');
  const statementId = r.int4('statement id');
  const flags = r.int1('flags');
  r.int4('iteration count');
  const execute: StmtExecute = { statementId, flags, params: [] };
  if (paramCount === 0) return execute;
  const bitmap = r.bytes(Math.floor((paramCount + 7) / 8), 'NULL bitmap');
  const bound = r.int1('new-params-bound flag');
  let types = previousTypes ? [...previousTypes] : undefined;
  if (bound === 1) {
    types = [];
    for (let i = 0; i < paramCount; i++) types.push(r.int2(`parameter ${i + 1} type`));
    execute.types = types;
  }
  for (let i = 0; i < paramCount; i++) {
    if (bitmap[i >> 3]! & (1 << (i & 7))) {
      execute.params.push(null);
      continue;
    }
    if (types === undefined || types.length !== paramCount) throw r.fail('parameter values without bound types');
    if (longData?.has(i)) {
      execute.params.push('(sent with COM_STMT_SEND_LONG_DATA)');
      continue;
    }
    const type = types[i]! & 0xff;
    const unsigned = types[i]! & 0x8000 ? UNSIGNED_FLAG : 0;
    execute.params.push(binaryValueText(readBinaryValue(r, type, `parameter ${i + 1}`), type, unsigned));
  }
  return execute;
}

/** COM_STMT_SEND_LONG_DATA's statement id and parameter index. */
export function decodeSendLongData(payload: Buffer): { statementId: number; param: number } {
  const r = new PacketReader(payload, 'COM_STMT_SEND_LONG_DATA');
  r.int1('command');
  return { statementId: r.int4('statement id'), param: r.int2('parameter id') };
}
