import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Capability,
  ColumnType,
  MAX_PHYSICAL_PAYLOAD,
  MysqlProtocolError,
  PacketFramer,
  decodeBinaryRow,
  decodeColumnDefinition,
  decodeErr,
  decodeHandshakeResponse,
  decodeHandshakeV10,
  decodeOk,
  decodePrepareOk,
  decodeStmtExecute,
  decodeTextRow,
  encodeBinaryRow,
  encodeColumnDefinition,
  encodeErr,
  encodeHandshakeResponse,
  encodeHandshakeV10,
  encodeOk,
  encodePacket,
  encodePrepareOk,
  encodeTextRow,
  binaryString,
  binaryValueText,
  isEndOfRows,
  cachingSha2Token,
  nativePasswordToken,
  verifyToken,
  type ColumnDefinition,
  type HandshakeResponse,
  type HandshakeV10,
  type Packet,
} from '../../../src/protocol/mysql/index.js';

const CAPS = Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CONNECT_WITH_DB | Capability.CONNECT_ATTRS | Capability.DEPRECATE_EOF | Capability.LONG_PASSWORD;

const greeting: HandshakeV10 = {
  serverVersion: '5.5.5-10.11.19-MariaDB',
  connectionId: 42,
  authData: Buffer.from('abcdefghijklmnopqrst'),
  capabilities: CAPS,
  extendedCapabilities: 0,
  charset: 45,
  status: 2,
  authPlugin: 'mysql_native_password',
};
const response: HandshakeResponse = {
  capabilities: CAPS,
  maxPacketSize: 16 * 1024 * 1024,
  charset: 45,
  extendedCapabilities: 0,
  user: 'hoop',
  authResponse: Buffer.alloc(20, 7),
  database: 'shop',
  authPlugin: 'mysql_native_password',
  attributes: new Map([['_client_name', 'test']]),
};
const column: ColumnDefinition = {
  catalog: 'def',
  schema: 'shop',
  table: 'c',
  orgTable: 'customers',
  name: 'mail',
  orgName: 'email',
  charset: 45,
  length: 1020,
  type: ColumnType.VAR_STRING,
  flags: 0,
  decimals: 0,
};

/** A server stream: greeting, OK, ERR, a column definition, text rows and a 16 MiB+ split packet. */
function fixtureStream(): { bytes: Buffer; payloads: Buffer[] } {
  const big = Buffer.alloc(MAX_PHYSICAL_PAYLOAD + 10, 0x61);
  const payloads = [
    encodeHandshakeV10(greeting),
    encodeOk({ affectedRows: 3, info: 'Rows matched: 3' }),
    encodeErr({ code: 1045, sqlState: '28000', message: 'Access denied' }),
    encodeColumnDefinition(column),
    encodeTextRow(['a', null, '']),
    Buffer.alloc(0),
    big,
  ];
  let seq = 0;
  const parts: Buffer[] = [];
  for (const p of payloads) {
    const { bytes, nextSeq } = encodePacket(p, seq);
    parts.push(bytes);
    seq = nextSeq;
  }
  return { bytes: Buffer.concat(parts), payloads };
}

describe('PacketFramer', () => {
  const { bytes, payloads } = fixtureStream();
  const small = bytes.subarray(0, bytes.length - (MAX_PHYSICAL_PAYLOAD + 10 + 8));

  it('returns the same packets whatever offset the stream is cut at', () => {
    const smallCount = payloads.length - 1;
    for (let cut = 0; cut <= small.length; cut++) {
      const framer = new PacketFramer();
      const packets = [...framer.push(small.subarray(0, cut)), ...framer.push(small.subarray(cut))];
      expect(packets.map((p) => p.payload)).toEqual(payloads.slice(0, smallCount));
      expect(framer.buffered).toBe(0);
    }
  });

  it('returns the same packets fed one byte at a time', () => {
    const framer = new PacketFramer();
    const packets: Packet[] = [];
    for (let i = 0; i < small.length; i++) packets.push(...framer.push(small.subarray(i, i + 1)));
    expect(packets.map((p) => p.payload)).toEqual(payloads.slice(0, payloads.length - 1));
    expect(Buffer.concat(packets.map((p) => p.raw))).toEqual(small);
  });

  it.each([0, 1, 3, 4, 5, MAX_PHYSICAL_PAYLOAD + 3, MAX_PHYSICAL_PAYLOAD + 4, MAX_PHYSICAL_PAYLOAD + 5, MAX_PHYSICAL_PAYLOAD + 9])(
    'joins a split 16 MiB+ payload cut at %i, keeping its raw bytes',
    (cut) => {
      const { bytes: split } = encodePacket(payloads[payloads.length - 1]!, 9);
      const framer = new PacketFramer();
      const packets = [...framer.push(split.subarray(0, cut)), ...framer.push(split.subarray(cut))];
      expect(packets).toHaveLength(1);
      expect(packets[0]!.seq).toBe(9);
      expect(packets[0]!.lastSeq).toBe(10);
      expect(packets[0]!.payload.equals(payloads[payloads.length - 1]!)).toBe(true);
      expect(packets[0]!.raw.equals(split)).toBe(true);
    },
  );

  it('frames a payload of exactly 16 MiB - 1 as two packets, the second empty', () => {
    const { bytes: split, nextSeq } = encodePacket(Buffer.alloc(MAX_PHYSICAL_PAYLOAD), 0);
    expect(split.length).toBe(MAX_PHYSICAL_PAYLOAD + 8);
    expect(nextSeq).toBe(2);
    expect(new PacketFramer().push(split)[0]!.payload.length).toBe(MAX_PHYSICAL_PAYLOAD);
  });

  it('refuses a declared length above the limit from its header alone, before holding the body', () => {
    const framer = new PacketFramer({ maxPayload: 1000 });
    const header = Buffer.from([0xe9, 0x03, 0x00, 0x00]);
    expect(() => framer.push(header)).toThrow(expect.objectContaining({ code: 'packet_too_long' }));
    expect(() => framer.push(Buffer.alloc(1))).toThrow(MysqlProtocolError);
  });

  it('refuses a continuation packet with the wrong sequence id', () => {
    const { bytes: split } = encodePacket(Buffer.alloc(MAX_PHYSICAL_PAYLOAD + 1), 0);
    split[4 + MAX_PHYSICAL_PAYLOAD + 3] = 5;
    expect(() => new PacketFramer().push(split)).toThrow(expect.objectContaining({ code: 'packet_out_of_order' }));
  });

  it('never crashes or holds more than the limit on random bytes (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const framer = new PacketFramer({ maxPayload: 4096 });
        try {
          for (const c of chunks) framer.push(Buffer.from(c));
        } catch (err) {
          expect(err).toBeInstanceOf(MysqlProtocolError);
        }
        expect(framer.buffered).toBeLessThanOrEqual(4096 + 4 + 64);
      }),
    );
  });

  it('round-trips any payload through encodePacket at any split (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(255), fc.nat(), (payload, seq, cutSeed) => {
        const { bytes: framed } = encodePacket(Buffer.from(payload), seq);
        const cut = cutSeed % (framed.length + 1);
        const framer = new PacketFramer();
        const packets = [...framer.push(framed.subarray(0, cut)), ...framer.push(framed.subarray(cut))];
        expect(packets).toHaveLength(1);
        expect(packets[0]!.seq).toBe(seq);
        expect([...packets[0]!.payload]).toEqual([...payload]);
      }),
    );
  });
});

describe('messages', () => {
  it('round-trips HandshakeV10 and HandshakeResponse41', () => {
    expect(decodeHandshakeV10(encodeHandshakeV10(greeting))).toEqual(greeting);
    expect(decodeHandshakeResponse(encodeHandshakeResponse(response))).toEqual(response);
  });

  it('round-trips OK, ERR, column definitions, PREPARE_OK', () => {
    expect(decodeOk(encodeOk({ affectedRows: 70000, lastInsertId: 1 << 20, status: 3, warnings: 1, info: 'x' }), CAPS & ~Capability.SESSION_TRACK)).toEqual({
      affectedRows: 70000,
      lastInsertId: 1 << 20,
      status: 3,
      warnings: 1,
      info: 'x',
    });
    expect(decodeErr(encodeErr({ code: 1927, sqlState: '70100', message: 'Connection was killed' }))).toEqual({ code: 1927, sqlState: '70100', message: 'Connection was killed' });
    expect(decodeColumnDefinition(encodeColumnDefinition(column))).toEqual(column);
    expect(decodePrepareOk(encodePrepareOk({ statementId: 7, columns: 2, params: 1, warnings: 0 }))).toEqual({ statementId: 7, columns: 2, params: 1, warnings: 0 });
  });

  it('tells the end of rows from a row whose first value starts with 0xFE', () => {
    expect(isEndOfRows(encodeOk({}, 0xfe), true)).toBe(true);
    expect(isEndOfRows(Buffer.from([0xfe, 0, 0, 2, 0]), false)).toBe(true);
    expect(isEndOfRows(encodeOk({ info: 'a long info text' }, 0xfe), false)).toBe(false);
  });

  it.each([
    ['TINY', ColumnType.TINY, Buffer.from([0xff]), 0, '-1'],
    ['TINY unsigned', ColumnType.TINY, Buffer.from([0xff]), 0x20, '255'],
    ['LONGLONG', ColumnType.LONGLONG, Buffer.from('ffffffffffffffff', 'hex'), 0, '-1'],
    ['DOUBLE', ColumnType.DOUBLE, Buffer.from(new Float64Array([1.5]).buffer), 0, '1.5'],
    ['DATE', ColumnType.DATE, Buffer.from([4, 0xe8, 0x07, 12, 3]), 0, '2024-12-03'],
    ['DATETIME', ColumnType.DATETIME, Buffer.from([7, 0xe8, 0x07, 12, 3, 13, 5, 9]), 0, '2024-12-03 13:05:09'],
    ['TIME negative', ColumnType.TIME, Buffer.from([8, 1, 1, 0, 0, 0, 2, 3, 4]), 0, '-26:03:04'],
    ['VAR_STRING', ColumnType.VAR_STRING, binaryString('héllo'), 0, 'héllo'],
  ])('reads a binary %s value as text', (_name, type, raw, flags, text) => {
    expect(binaryValueText(raw, type, flags)).toBe(text);
  });

  it('round-trips text and binary rows with NULLs', () => {
    expect(decodeTextRow(encodeTextRow(['1', null, 'x'.repeat(300)]), 3)).toEqual([Buffer.from('1'), null, Buffer.from('x'.repeat(300))]);
    const types = [ColumnType.LONG, ColumnType.VAR_STRING, ColumnType.NULL, ColumnType.DATE];
    const values = [Buffer.from([1, 0, 0, 0]), binaryString('abc'), null, Buffer.from([0])];
    expect(decodeBinaryRow(encodeBinaryRow(values), types)).toEqual(values);
  });

  it('decodes COM_STMT_EXECUTE parameters, reusing types bound earlier', () => {
    const payload = Buffer.concat([
      Buffer.from([0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0]),
      Buffer.from([0b010]), // NULL bitmap: parameter 2
      Buffer.from([1, 0x03, 0x00, 0xfd, 0x00, 0x08, 0x80]),
      Buffer.from([42, 0, 0, 0]),
      Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]),
    ]);
    const execute = decodeStmtExecute(payload, 3);
    expect(execute).toMatchObject({ statementId: 5, params: ['42', null, '18446744073709551615'] });
    const again = Buffer.concat([Buffer.from([0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0b011, 0]), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0])]);
    expect(decodeStmtExecute(again, 3, execute.types).params).toEqual([null, null, '1']);
  });

  it('gives typed errors, never crashes, on random payloads (property)', () => {
    const decoders = [
      (b: Buffer) => decodeHandshakeV10(b),
      (b: Buffer) => decodeHandshakeResponse(b),
      (b: Buffer) => decodeColumnDefinition(b),
      (b: Buffer) => decodeTextRow(b, 3),
      (b: Buffer) => decodeBinaryRow(b, [ColumnType.LONG, ColumnType.BLOB, ColumnType.DATETIME]),
      (b: Buffer) => decodeStmtExecute(Buffer.concat([Buffer.from([0x17]), b]), 2),
    ];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(decoders.length - 1), (bytes, which) => {
        try {
          decoders[which]!(Buffer.from(bytes));
        } catch (err) {
          expect(err).toBeInstanceOf(MysqlProtocolError);
        }
      }),
    );
  });
});

describe('auth tokens', () => {
  const scramble = Buffer.from('0123456789abcdefghij');

  it('matches the mysql_native_password formula and verifies only the right password', () => {
    const token = nativePasswordToken('secret', scramble);
    expect(token).toHaveLength(20);
    expect(verifyToken('mysql_native_password', 'secret', scramble, token)).toBe(true);
    expect(verifyToken('mysql_native_password', 'Secret', scramble, token)).toBe(false);
    expect(verifyToken('caching_sha2_password', 'secret', scramble, cachingSha2Token('secret', scramble))).toBe(true);
    expect(verifyToken('caching_sha2_password', 'secret', scramble, token)).toBe(false);
    expect(verifyToken('dialog', 'secret', scramble, token)).toBe(false);
  });
});
