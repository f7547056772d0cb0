import type { ErrorFields } from '../errors/pg-error.js';

/**
 * PostgreSQL protocol v3.0 messages, named as in the protocol documentation
 * ("Message Formats", https://www.postgresql.org/docs/current/protocol-message-formats.html).
 * Both unions are closed: every switch over them ends in an exhaustiveness check.
 */

/** Frontend type bytes, as const; the letter is the byte on the wire. */
export const FrontendCode = {
  Query: 0x51, // 'Q'
  Parse: 0x50, // 'P'
  Bind: 0x42, // 'B'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Sync: 0x53, // 'S'
  Flush: 0x48, // 'H'
  Close: 0x43, // 'C'
  Terminate: 0x58, // 'X'
  AuthenticationResponse: 0x70, // 'p' (PasswordMessage, SASLInitialResponse, SASLResponse)
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  FunctionCall: 0x46, // 'F'
} as const;

export const BackendCode = {
  Authentication: 0x52, // 'R'
  ParameterStatus: 0x53, // 'S'
  BackendKeyData: 0x4b, // 'K'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
  DataRow: 0x44, // 'D'
  CommandComplete: 0x43, // 'C'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  NoticeResponse: 0x4e, // 'N'
  ParseComplete: 0x31, // '1'
  BindComplete: 0x32, // '2'
  CloseComplete: 0x33, // '3'
  NoData: 0x6e, // 'n'
  ParameterDescription: 0x74, // 't'
  PortalSuspended: 0x73, // 's'
  NegotiateProtocolVersion: 0x76, // 'v'
} as const;

/** Request codes carried in the protocol-version field of an untyped startup packet. */
export const StartupCode = {
  Protocol30: 196608, // 3 << 16
  CancelRequest: 80877102, // 1234 << 16 | 5678
  SSLRequest: 80877103, // 1234 << 16 | 5679
  GSSENCRequest: 80877104, // 1234 << 16 | 5680
} as const;

export type FrontendMessage =
  | { type: 'StartupMessage'; major: number; minor: number; params: Map<string, string> }
  | { type: 'SSLRequest' }
  | { type: 'GSSENCRequest' }
  | { type: 'CancelRequest'; processId: number; secretKey: number }
  | { type: 'Query'; sql: string }
  | { type: 'Parse'; name: string; sql: string; paramTypes: number[] }
  | {
      type: 'Bind';
      portal: string;
      statement: string;
      paramFormats: number[];
      params: (Buffer | null)[];
      resultFormats: number[];
    }
  | { type: 'Describe'; target: 'S' | 'P'; name: string }
  | { type: 'Execute'; portal: string; maxRows: number }
  | { type: 'Sync' }
  | { type: 'Flush' }
  | { type: 'Close'; target: 'S' | 'P'; name: string }
  | { type: 'Terminate' }
  /** 'p': the session decides, from its state, which kind of response this is. */
  | { type: 'AuthenticationResponse'; data: Buffer }
  /** COPY FROM STDIN's data from the client: passed to the data plane, ignored elsewhere. */
  | { type: 'CopyData'; data: Buffer }
  | { type: 'CopyDone' }
  | { type: 'CopyFail'; message: string }
  | { type: 'Unsupported'; code: number };

export interface FieldDescription {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  format: 0 | 1;
}

/** ErrorResponse and NoticeResponse carry the same fields. */
export type NoticeFields = ErrorFields;

export type BackendMessage =
  | { type: 'AuthenticationOk' }
  | { type: 'AuthenticationCleartextPassword' }
  | { type: 'AuthenticationSASL'; mechanisms: string[] }
  | { type: 'AuthenticationSASLContinue'; data: Buffer }
  | { type: 'AuthenticationSASLFinal'; data: Buffer }
  | { type: 'ParameterStatus'; name: string; value: string }
  | { type: 'BackendKeyData'; processId: number; secretKey: number }
  | { type: 'ReadyForQuery'; status: TransactionStatus }
  | { type: 'RowDescription'; fields: FieldDescription[] }
  | { type: 'DataRow'; values: readonly (Buffer | string | null)[] }
  | { type: 'CommandComplete'; tag: string }
  | { type: 'EmptyQueryResponse' }
  | { type: 'ErrorResponse'; fields: NoticeFields }
  | { type: 'NoticeResponse'; fields: NoticeFields }
  | { type: 'ParseComplete' }
  | { type: 'BindComplete' }
  | { type: 'CloseComplete' }
  | { type: 'NoData' }
  | { type: 'ParameterDescription'; typeOids: number[] }
  | { type: 'PortalSuspended' }
  | { type: 'NegotiateProtocolVersion'; newestMinor: number; unrecognized: string[] };

/** ReadyForQuery status: idle, in a transaction block, in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E';

/**
 * Type OIDs from pg_type (src/include/catalog/pg_type.dat): the types portcullis returns,
 * and those drivers bind parameters as (formats.ts converts each, text and binary).
 */
export const TypeOid = {
  bool: 16,
  bytea: 17,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  jsonArray: 199,
  float4: 700,
  float8: 701,
  unknown: 705,
  boolArray: 1000,
  byteaArray: 1001,
  nameArray: 1003,
  int2Array: 1005,
  int4Array: 1007,
  textArray: 1009,
  varcharArray: 1015,
  int8Array: 1016,
  float4Array: 1021,
  float8Array: 1022,
  oidArray: 1028,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  timestamp: 1114,
  timestampArray: 1115,
  timestamptz: 1184,
  timestamptzArray: 1185,
  void: 2278,
  jsonb: 3802,
  jsonbArray: 3807,
} as const;

export function assertNever(x: never): never {
  throw new Error(`unhandled variant: ${JSON.stringify(x)}`);
}
