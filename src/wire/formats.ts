import { PgError } from '../errors/pg-error.js';
import { TypeOid } from './messages.js';

/**
 * Binary-format conversions for the few types portcullis sends and accepts. The engine
 * works in text; binary is a wire encoding, so it lives here.
 */

export function binaryResultSupported(typeOid: number): boolean {
  return (
    typeOid === TypeOid.text || typeOid === TypeOid.bool || typeOid === TypeOid.int4 || typeOid === TypeOid.int8
  );
}

export function textToBinary(typeOid: number, text: string): Buffer {
  switch (typeOid) {
    case TypeOid.bool:
      return Buffer.from([text === 't' ? 1 : 0]);
    case TypeOid.int4: {
      const b = Buffer.alloc(4);
      b.writeInt32BE(Number(text));
      return b;
    }
    case TypeOid.int8: {
      const b = Buffer.alloc(8);
      b.writeBigInt64BE(BigInt(text));
      return b;
    }
    default:
      return Buffer.from(text, 'utf8');
  }
}

/** A bound parameter in binary format, read as its declared type and turned into text. */
export function binaryParamToText(typeOid: number, data: Buffer, index: number): string {
  const bad = () =>
    new PgError('invalid_parameter_value', `incorrect binary data format in bind parameter ${index}`);
  switch (typeOid) {
    case TypeOid.bool:
      if (data.length !== 1) throw bad();
      return data[0] ? 'true' : 'false';
    case TypeOid.int4:
      if (data.length !== 4) throw bad();
      return String(data.readInt32BE(0));
    case TypeOid.int8:
      if (data.length !== 8) throw bad();
      return data.readBigInt64BE(0).toString();
    case TypeOid.text:
    case TypeOid.unknown:
    case 0:
      return data.toString('utf8');
    default:
      throw new PgError('feature_not_supported', `binary format for parameter ${index} of type ${typeOid} is not supported`, {
        hint: 'Send parameters in text format.',
      });
  }
}
