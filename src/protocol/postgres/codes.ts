// Message type bytes and startup request codes: PostgreSQL docs, "Frontend/Backend Protocol",
// section "Message Formats".

/** Type bytes of messages the client sends after the startup phase. */
export const FrontendCode = {
  Bind: 0x42, // B
  Close: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  Describe: 0x44, // D
  Execute: 0x45, // E
  Flush: 0x48, // H
  FunctionCall: 0x46, // F
  Parse: 0x50, // P
  Password: 0x70, // p: PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse
  Query: 0x51, // Q
  Sync: 0x53, // S
  Terminate: 0x58, // X
} as const;
export type FrontendCode = (typeof FrontendCode)[keyof typeof FrontendCode];

/** Type bytes of messages the server sends. */
export const BackendCode = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  CommandComplete: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  DataRow: 0x44, // D
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  FunctionCallResponse: 0x56, // V
  NegotiateProtocolVersion: 0x76, // v
  NoData: 0x6e, // n
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParameterDescription: 0x74, // t
  ParameterStatus: 0x53, // S
  ParseComplete: 0x31, // 1
  PortalSuspended: 0x73, // s
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
} as const;
export type BackendCode = (typeof BackendCode)[keyof typeof BackendCode];

/** The int32 after the length of an untyped startup-phase packet. */
export const StartupCode = {
  Protocol3: 196608, // 3 << 16 | 0: StartupMessage, protocol 3.0
  SSLRequest: 80877103, // 1234 << 16 | 5679
  GSSENCRequest: 80877104, // 1234 << 16 | 5680
  CancelRequest: 80877102, // 1234 << 16 | 5678
} as const;

/** Protocol 3.2 (PostgreSQL 18): longer cancel keys. */
export const PROTOCOL_3_2 = (3 << 16) | 2;

/** Subcodes of the Authentication ('R') message. */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  SCMCredential: 6,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** The server rejects startup packets whose body (after the length word) is longer. */
export const MAX_STARTUP_PACKET_LENGTH = 10_000;
/** Cancel keys are 4 bytes in protocol 3.0 and at most 256 bytes in 3.2. */
export const MAX_CANCEL_KEY_LENGTH = 256;

/** A type byte as two hex digits for error messages, e.g. 0x7a. */
export function hexByte(code: number): string {
  return `0x${code.toString(16).padStart(2, '0')}`;
}
