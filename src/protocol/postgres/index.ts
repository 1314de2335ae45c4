// PostgreSQL wire protocol codec, both directions, no sockets. Follows the PostgreSQL docs,
// chapter "Frontend/Backend Protocol" (protocol 3.0 and 3.2).
//
//   client                         gateway (FrontendFramer / BackendFramer)              server
//   SSLRequest / GSSENCRequest ─▶  answered 'N' by the engine
//   StartupMessage ────────────▶   parseStartupPacket ─────────────────────────────────▶
//                      ◀──────────  Authentication* / ParameterStatus* / BackendKeyData / ReadyForQuery
//   Query | Parse Bind ... Sync ▶  parseFrontendMessage → policy → raw forwarded as is ─▶
//                      ◀──────────  RowDescription DataRow* CommandComplete ReadyForQuery
//
// A Frame keeps the message's raw bytes: what is not changed is forwarded byte for byte.
export * from './codes.js';
export * from './protocol-error.js';
export * from './frame.js';
export * from './buffer-reader.js';
export * from './message-writer.js';
export * from './frontend.js';
export * from './backend.js';
export * from './responses.js';
