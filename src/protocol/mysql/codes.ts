// Names from the MySQL source (include/mysql_com.h, my_command.h, field_types.h) and
// MariaDB's mysql_com.h for its extended capabilities.

/** Capability flags (CLIENT_*). */
export const Capability = {
  LONG_PASSWORD: 1 << 0, // MariaDB clears it ("CLIENT_MYSQL") to say the greeting carries extended capabilities
  FOUND_ROWS: 1 << 1,
  LONG_FLAG: 1 << 2,
  CONNECT_WITH_DB: 1 << 3,
  NO_SCHEMA: 1 << 4,
  COMPRESS: 1 << 5,
  ODBC: 1 << 6,
  LOCAL_FILES: 1 << 7,
  IGNORE_SPACE: 1 << 8,
  PROTOCOL_41: 1 << 9,
  INTERACTIVE: 1 << 10,
  SSL: 1 << 11,
  IGNORE_SIGPIPE: 1 << 12,
  TRANSACTIONS: 1 << 13,
  RESERVED: 1 << 14,
  SECURE_CONNECTION: 1 << 15,
  MULTI_STATEMENTS: 1 << 16,
  MULTI_RESULTS: 1 << 17,
  PS_MULTI_RESULTS: 1 << 18,
  PLUGIN_AUTH: 1 << 19,
  CONNECT_ATTRS: 1 << 20,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 1 << 21,
  CAN_HANDLE_EXPIRED_PASSWORDS: 1 << 22,
  SESSION_TRACK: 1 << 23,
  DEPRECATE_EOF: 1 << 24,
  OPTIONAL_RESULTSET_METADATA: 1 << 25,
  ZSTD_COMPRESSION: 1 << 26,
  QUERY_ATTRIBUTES: 1 << 27,
} as const;

/** Command bytes (COM_*), the first byte of a client command packet. */
export const Command = {
  SLEEP: 0x00,
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  CREATE_DB: 0x05,
  DROP_DB: 0x06,
  REFRESH: 0x07,
  SHUTDOWN: 0x08,
  STATISTICS: 0x09,
  PROCESS_INFO: 0x0a,
  CONNECT: 0x0b,
  PROCESS_KILL: 0x0c,
  DEBUG: 0x0d,
  PING: 0x0e,
  TIME: 0x0f,
  DELAYED_INSERT: 0x10,
  CHANGE_USER: 0x11,
  BINLOG_DUMP: 0x12,
  TABLE_DUMP: 0x13,
  CONNECT_OUT: 0x14,
  REGISTER_SLAVE: 0x15,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  STMT_FETCH: 0x1c,
  DAEMON: 0x1d,
  BINLOG_DUMP_GTID: 0x1e,
  RESET_CONNECTION: 0x1f,
  STMT_BULK_EXECUTE: 0xfa, // MariaDB
} as const;

export const commandNames: Record<number, string> = Object.fromEntries(Object.entries(Command).map(([k, v]) => [v, `COM_${k}`]));

/** Column types (enum_field_types). */
export const ColumnType = {
  DECIMAL: 0x00,
  TINY: 0x01,
  SHORT: 0x02,
  LONG: 0x03,
  FLOAT: 0x04,
  DOUBLE: 0x05,
  NULL: 0x06,
  TIMESTAMP: 0x07,
  LONGLONG: 0x08,
  INT24: 0x09,
  DATE: 0x0a,
  TIME: 0x0b,
  DATETIME: 0x0c,
  YEAR: 0x0d,
  NEWDATE: 0x0e,
  VARCHAR: 0x0f,
  BIT: 0x10,
  TIMESTAMP2: 0x11,
  DATETIME2: 0x12,
  TIME2: 0x13,
  VECTOR: 0xf2,
  JSON: 0xf5,
  NEWDECIMAL: 0xf6,
  ENUM: 0xf7,
  SET: 0xf8,
  TINY_BLOB: 0xf9,
  MEDIUM_BLOB: 0xfa,
  LONG_BLOB: 0xfb,
  BLOB: 0xfc,
  VAR_STRING: 0xfd,
  STRING: 0xfe,
  GEOMETRY: 0xff,
} as const;

/** Server status flags (SERVER_STATUS_*) carried by OK and EOF. */
export const ServerStatus = {
  IN_TRANS: 0x0001,
  AUTOCOMMIT: 0x0002,
  MORE_RESULTS_EXISTS: 0x0008,
  CURSOR_EXISTS: 0x0040,
  LAST_ROW_SENT: 0x0080,
  SESSION_STATE_CHANGED: 0x4000,
} as const;

/** First payload byte of server replies. */
export const Header = {
  OK: 0x00,
  AUTH_MORE_DATA: 0x01,
  LOCAL_INFILE: 0xfb,
  EOF: 0xfe, // also AuthSwitchRequest during authentication
  ERR: 0xff,
} as const;

/** Error codes the gateway raises itself (MySQL / MariaDB error numbers). */
export const ErrorCode = {
  ACCESS_DENIED: 1045, // ER_ACCESS_DENIED_ERROR, SQLSTATE 28000
  DBACCESS_DENIED: 1044, // ER_DBACCESS_DENIED_ERROR, SQLSTATE 42000
  NOT_SUPPORTED: 1235, // ER_NOT_SUPPORTED_YET, SQLSTATE 42000
  SPECIFIC_ACCESS_DENIED: 1227, // ER_SPECIFIC_ACCESS_DENIED_ERROR, SQLSTATE 42000
  UNKNOWN_COM: 1047, // ER_UNKNOWN_COM_ERROR, SQLSTATE 08S01
  QUERY_INTERRUPTED: 1317, // ER_QUERY_INTERRUPTED, SQLSTATE 70100
  CONNECTION_KILLED: 1927, // ER_CONNECTION_KILLED (MariaDB), SQLSTATE 70100
  PARSE_ERROR: 1064, // ER_PARSE_ERROR, SQLSTATE 42000
  HANDSHAKE: 1043, // ER_HANDSHAKE_ERROR, SQLSTATE 08S01
  TOO_MANY_CONNECTIONS: 1040, // ER_CON_COUNT_ERROR, SQLSTATE 08004
  NET_PACKET_TOO_LARGE: 1153, // ER_NET_PACKET_TOO_LARGE, SQLSTATE 08S01
  UNKNOWN_STMT_HANDLER: 1243, // ER_UNKNOWN_STMT_HANDLER, SQLSTATE HY000
} as const;
