// Byte fixtures for every message type in both directions, with the decoded form each must give.
import type { BackendMessage, FrontendMessage, StartupPacket } from '../../../src/protocol/postgres/index.js';
import { typed, untyped } from './byte-builder.js';

const int4 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
};

const params = (o: Record<string, string>): Record<string, string> => Object.assign(Object.create(null), o);

export const startupFixtures: [string, Buffer, StartupPacket][] = [
  [
    'StartupMessage 3.0',
    untyped((b) => b.i32(196608).str('user').str('alice').str('database').str('orders').str('application_name').str('psql').u8(0)),
    { kind: 'startup', protocolVersion: 196608, params: params({ user: 'alice', database: 'orders', application_name: 'psql' }) },
  ],
  [
    'StartupMessage 3.2 with a protocol option',
    untyped((b) => b.i32(196610).str('user').str('bob').str('_pq_.compression').str('on').u8(0)),
    { kind: 'startup', protocolVersion: 196610, params: params({ user: 'bob', '_pq_.compression': 'on' }) },
  ],
  ['SSLRequest', untyped((b) => b.i32(80877103)), { kind: 'ssl' }],
  ['GSSENCRequest', untyped((b) => b.i32(80877104)), { kind: 'gssenc' }],
  [
    'CancelRequest 3.0 (4-byte key)',
    untyped((b) => b.i32(80877102).i32(4242).raw([1, 2, 3, 4])),
    { kind: 'cancel', processId: 4242, secretKey: Buffer.from([1, 2, 3, 4]) },
  ],
  [
    'CancelRequest 3.2 (32-byte key)',
    untyped((b) => b.i32(80877102).i32(77).raw(Buffer.alloc(32, 0xab))),
    { kind: 'cancel', processId: 77, secretKey: Buffer.alloc(32, 0xab) },
  ],
];

export const frontendFixtures: [string, Buffer, FrontendMessage][] = [
  ['Query', typed('Q', (b) => b.str('select 1')), { type: 'Query', sql: 'select 1' }],
  ['Query, UTF-8', typed('Q', (b) => b.str("select 'héllo ✓ 🐘'")), { type: 'Query', sql: "select 'héllo ✓ 🐘'" }],
  ['Query, empty', typed('Q', (b) => b.str('')), { type: 'Query', sql: '' }],
  [
    'Parse with types',
    typed('P', (b) => b.str('s1').str('select $1::int, $2').i16(2).u32(23).u32(0)),
    { type: 'Parse', name: 's1', sql: 'select $1::int, $2', paramTypes: [23, 0] },
  ],
  ['Parse unnamed', typed('P', (b) => b.str('').str('select 1').i16(0)), { type: 'Parse', name: '', sql: 'select 1', paramTypes: [] }],
  [
    'Bind',
    typed('B', (b) => b.str('p1').str('s1').i16(1).i16(1).i16(3).lenBytes(int4(42)).lenBytes(null).lenBytes('').i16(2).i16(0).i16(1)),
    {
      type: 'Bind',
      portal: 'p1',
      statement: 's1',
      paramFormats: [1],
      params: [int4(42), null, Buffer.alloc(0)],
      resultFormats: [0, 1],
    },
  ],
  [
    'Bind, no parameters',
    typed('B', (b) => b.str('').str('').i16(0).i16(0).i16(0)),
    { type: 'Bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] },
  ],
  ['Execute', typed('E', (b) => b.str('').i32(0)), { type: 'Execute', portal: '', maxRows: 0 }],
  ['Execute with row limit', typed('E', (b) => b.str('p1').i32(100)), { type: 'Execute', portal: 'p1', maxRows: 100 }],
  ['Describe statement', typed('D', (b) => b.char('S').str('s1')), { type: 'Describe', target: 'S', name: 's1' }],
  ['Describe portal', typed('D', (b) => b.char('P').str('')), { type: 'Describe', target: 'P', name: '' }],
  ['Close statement', typed('C', (b) => b.char('S').str('s1')), { type: 'Close', target: 'S', name: 's1' }],
  ['Close portal', typed('C', (b) => b.char('P').str('p1')), { type: 'Close', target: 'P', name: 'p1' }],
  ['Sync', typed('S'), { type: 'Sync' }],
  ['Flush', typed('H'), { type: 'Flush' }],
  ['Terminate', typed('X'), { type: 'Terminate' }],
  ['CopyDone', typed('c'), { type: 'CopyDone' }],
  ['CopyData', typed('d', (b) => b.raw('1\tfoo\n')), { type: 'CopyData', data: Buffer.from('1\tfoo\n') }],
  ['CopyFail', typed('f', (b) => b.str('aborted by user')), { type: 'CopyFail', message: 'aborted by user' }],
  [
    'FunctionCall',
    typed('F', (b) => b.u32(1598).i16(1).i16(1).i16(2).lenBytes(int4(7)).lenBytes(null).i16(1)),
    { type: 'FunctionCall', functionOid: 1598, argFormats: [1], args: [int4(7), null], resultFormat: 1 },
  ],
  ['Password (PasswordMessage)', typed('p', (b) => b.str('secret')), { type: 'Password', data: Buffer.from('secret\0') }],
  [
    'Password (SASLInitialResponse)',
    typed('p', (b) => b.str('SCRAM-SHA-256').lenBytes('n,,n=,r=abc')),
    { type: 'Password', data: Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), int4(11), Buffer.from('n,,n=,r=abc')]) },
  ],
];

export const backendFixtures: [string, Buffer, BackendMessage][] = [
  ['AuthenticationOk', typed('R', (b) => b.i32(0)), { type: 'Authentication', request: { kind: 'Ok' } }],
  ['AuthenticationKerberosV5', typed('R', (b) => b.i32(2)), { type: 'Authentication', request: { kind: 'KerberosV5' } }],
  ['AuthenticationCleartextPassword', typed('R', (b) => b.i32(3)), { type: 'Authentication', request: { kind: 'CleartextPassword' } }],
  [
    'AuthenticationMD5Password',
    typed('R', (b) => b.i32(5).raw([9, 8, 7, 6])),
    { type: 'Authentication', request: { kind: 'MD5Password', salt: Buffer.from([9, 8, 7, 6]) } },
  ],
  ['AuthenticationSCMCredential', typed('R', (b) => b.i32(6)), { type: 'Authentication', request: { kind: 'SCMCredential' } }],
  ['AuthenticationGSS', typed('R', (b) => b.i32(7)), { type: 'Authentication', request: { kind: 'GSS' } }],
  [
    'AuthenticationGSSContinue',
    typed('R', (b) => b.i32(8).raw([0x60, 0x82])),
    { type: 'Authentication', request: { kind: 'GSSContinue', data: Buffer.from([0x60, 0x82]) } },
  ],
  ['AuthenticationSSPI', typed('R', (b) => b.i32(9)), { type: 'Authentication', request: { kind: 'SSPI' } }],
  [
    'AuthenticationSASL',
    typed('R', (b) => b.i32(10).str('SCRAM-SHA-256-PLUS').str('SCRAM-SHA-256').u8(0)),
    { type: 'Authentication', request: { kind: 'SASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] } },
  ],
  [
    'AuthenticationSASLContinue',
    typed('R', (b) => b.i32(11).raw('r=abc,s=c2FsdA==,i=4096')),
    { type: 'Authentication', request: { kind: 'SASLContinue', data: Buffer.from('r=abc,s=c2FsdA==,i=4096') } },
  ],
  [
    'AuthenticationSASLFinal',
    typed('R', (b) => b.i32(12).raw('v=c2lnbmF0dXJl')),
    { type: 'Authentication', request: { kind: 'SASLFinal', data: Buffer.from('v=c2lnbmF0dXJl') } },
  ],
  [
    'BackendKeyData 3.0',
    typed('K', (b) => b.i32(31337).raw([0xde, 0xad, 0xbe, 0xef])),
    { type: 'BackendKeyData', processId: 31337, secretKey: Buffer.from([0xde, 0xad, 0xbe, 0xef]) },
  ],
  [
    'BackendKeyData 3.2',
    typed('K', (b) => b.i32(5).raw(Buffer.alloc(32, 7))),
    { type: 'BackendKeyData', processId: 5, secretKey: Buffer.alloc(32, 7) },
  ],
  [
    'ParameterStatus',
    typed('S', (b) => b.str('server_version').str('17.2')),
    { type: 'ParameterStatus', name: 'server_version', value: '17.2' },
  ],
  ['ReadyForQuery idle', typed('Z', (b) => b.char('I')), { type: 'ReadyForQuery', status: 'I' }],
  ['ReadyForQuery in transaction', typed('Z', (b) => b.char('T')), { type: 'ReadyForQuery', status: 'T' }],
  ['ReadyForQuery failed transaction', typed('Z', (b) => b.char('E')), { type: 'ReadyForQuery', status: 'E' }],
  [
    'ErrorResponse',
    typed('E', (b) =>
      b.char('S').str('ERROR').char('V').str('ERROR').char('C').str('42P01').char('M').str('relation "t" does not exist').char('P').str('15').u8(0),
    ),
    { type: 'ErrorResponse', fields: params({ S: 'ERROR', V: 'ERROR', C: '42P01', M: 'relation "t" does not exist', P: '15' }) },
  ],
  [
    'NoticeResponse',
    typed('N', (b) => b.char('S').str('NOTICE').char('C').str('00000').char('M').str('hi').u8(0)),
    { type: 'NoticeResponse', fields: params({ S: 'NOTICE', C: '00000', M: 'hi' }) },
  ],
  [
    'RowDescription',
    typed('T', (b) =>
      b.i16(2).str('id').u32(16384).i16(1).u32(23).i16(4).i32(-1).i16(0).str('name').u32(16384).i16(2).u32(1043).i16(-1).i32(68).i16(1),
    ),
    {
      type: 'RowDescription',
      fields: [
        { name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
        { name: 'name', tableOid: 16384, columnAttr: 2, typeOid: 1043, typeSize: -1, typeModifier: 68, format: 1 },
      ],
    },
  ],
  ['RowDescription, no fields', typed('T', (b) => b.i16(0)), { type: 'RowDescription', fields: [] }],
  [
    'DataRow',
    typed('D', (b) => b.i16(3).lenBytes('42').lenBytes(null).lenBytes('')),
    { type: 'DataRow', values: [Buffer.from('42'), null, Buffer.alloc(0)] },
  ],
  ['CommandComplete', typed('C', (b) => b.str('INSERT 0 5')), { type: 'CommandComplete', tag: 'INSERT 0 5' }],
  [
    'CopyInResponse',
    typed('G', (b) => b.u8(0).i16(2).i16(0).i16(0)),
    { type: 'CopyInResponse', format: 0, columnFormats: [0, 0] },
  ],
  ['CopyOutResponse', typed('H', (b) => b.u8(1).i16(1).i16(1)), { type: 'CopyOutResponse', format: 1, columnFormats: [1] }],
  ['CopyBothResponse', typed('W', (b) => b.u8(0).i16(0)), { type: 'CopyBothResponse', format: 0, columnFormats: [] }],
  ['CopyData', typed('d', (b) => b.raw('a,b\n')), { type: 'CopyData', data: Buffer.from('a,b\n') }],
  ['CopyDone', typed('c'), { type: 'CopyDone' }],
  [
    'NotificationResponse',
    typed('A', (b) => b.i32(999).str('orders').str('{"id":1}')),
    { type: 'NotificationResponse', processId: 999, channel: 'orders', payload: '{"id":1}' },
  ],
  ['ParameterDescription', typed('t', (b) => b.i16(2).u32(23).u32(25)), { type: 'ParameterDescription', typeOids: [23, 25] }],
  [
    'NegotiateProtocolVersion',
    typed('v', (b) => b.i32(0).i32(2).str('_pq_.a').str('_pq_.b')),
    { type: 'NegotiateProtocolVersion', minorVersion: 0, unrecognized: ['_pq_.a', '_pq_.b'] },
  ],
  ['FunctionCallResponse', typed('V', (b) => b.lenBytes(int4(1))), { type: 'FunctionCallResponse', result: int4(1) }],
  ['FunctionCallResponse NULL', typed('V', (b) => b.i32(-1)), { type: 'FunctionCallResponse', result: null }],
  ['ParseComplete', typed('1'), { type: 'ParseComplete' }],
  ['BindComplete', typed('2'), { type: 'BindComplete' }],
  ['CloseComplete', typed('3'), { type: 'CloseComplete' }],
  ['NoData', typed('n'), { type: 'NoData' }],
  ['EmptyQueryResponse', typed('I'), { type: 'EmptyQueryResponse' }],
  ['PortalSuspended', typed('s'), { type: 'PortalSuspended' }],
];
