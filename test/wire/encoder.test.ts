import { describe, expect, it } from 'vitest';
import { Parser } from 'pg-protocol/dist/parser.js';
import { encode } from '../../src/wire/encoder.js';
import type { BackendMessage } from '../../src/wire/messages.js';

/** Every backend message type, decoded by pg-protocol (an independent parser). */
describe('backend encoder', () => {
  const all: BackendMessage[] = [
    { type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] },
    { type: 'AuthenticationSASLContinue', data: Buffer.from('r=abc,s=c2FsdA==,i=4096') },
    { type: 'AuthenticationSASLFinal', data: Buffer.from('v=xyz') },
    { type: 'AuthenticationOk' },
    { type: 'ParameterStatus', name: 'server_version', value: '16.0' },
    { type: 'BackendKeyData', processId: 42, secretKey: -7 },
    { type: 'ReadyForQuery', status: 'T' },
    {
      type: 'RowDescription',
      fields: [{ name: 'name', tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }],
    },
    { type: 'DataRow', values: ['alice', null, Buffer.from([1, 2])] },
    { type: 'CommandComplete', tag: 'CREATE USER' },
    { type: 'EmptyQueryResponse' },
    { type: 'ErrorResponse', fields: { severity: 'ERROR', code: '42601', message: 'syntax error at or near "USR"', position: 8, hint: 'Expected USER.' } },
    { type: 'NoticeResponse', fields: { severity: 'NOTICE', code: '00000', message: 'note', detail: 'd' } },
    { type: 'ParseComplete' },
    { type: 'BindComplete' },
    { type: 'CloseComplete' },
    { type: 'NoData' },
    { type: 'ParameterDescription', typeOids: [25, 23] },
    { type: 'PortalSuspended' },
  ];

  it('writes messages that pg-protocol decodes to the same content', () => {
    const names: string[] = [];
    const decoded: Record<string, unknown>[] = [];
    new Parser().parse(encode(...all), (m) => {
      names.push(m.name);
      decoded.push(m as unknown as Record<string, unknown>);
    });
    expect(names).toEqual([
      'authenticationSASL',
      'authenticationSASLContinue',
      'authenticationSASLFinal',
      'authenticationOk',
      'parameterStatus',
      'backendKeyData',
      'readyForQuery',
      'rowDescription',
      'dataRow',
      'commandComplete',
      'emptyQuery',
      'error',
      'notice',
      'parseComplete',
      'bindComplete',
      'closeComplete',
      'noData',
      'parameterDescription',
      'portalSuspended',
    ]);
    expect(decoded[0]).toMatchObject({ mechanisms: ['SCRAM-SHA-256'] });
    expect(decoded[5]).toMatchObject({ processID: 42, secretKey: -7 });
    expect(decoded[6]).toMatchObject({ status: 'T' });
    expect(decoded[8]).toMatchObject({ fields: ['alice', null, '\u0001\u0002'] });
    expect(decoded[9]).toMatchObject({ text: 'CREATE USER' });
    expect(decoded[11]).toMatchObject({ code: '42601', position: '8', hint: 'Expected USER.', severity: 'ERROR' });
    expect(decoded[17]).toMatchObject({ dataTypeIDs: [25, 23] });
  });

  it('encodes UTF-8 text by byte length', () => {
    const msgs: unknown[] = [];
    new Parser().parse(encode({ type: 'DataRow', values: ['naïve 🦀'] }, { type: 'CommandComplete', tag: 'SHOW' }), (m) => msgs.push(m));
    expect(msgs[0]).toMatchObject({ fields: ['naïve 🦀'] });
  });
});
