import { FrontendCode } from './messages.js';

/**
 * Frontend messages as bytes, for passing a client's messages on to the data plane
 * (the mirror of decoder.ts): the forwarder re-frames what it decoded, with statement
 * names mapped and `$auth.*` substituted, and everything else as the client sent it.
 */
export class FrontendWriter {
  private parts: Buffer[] = [];
  private cur: number[] | null = null;
  private body: Buffer[] = [];
  private bodyLen = 0;

  private begin(code: number): this {
    this.cur = [code];
    this.body = [];
    this.bodyLen = 0;
    return this;
  }

  private add(b: Buffer): this {
    this.body.push(b);
    this.bodyLen += b.length;
    return this;
  }

  private cstring(s: string): this {
    return this.add(Buffer.from(s + '\0', 'utf8'));
  }

  private int16(n: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(n);
    return this.add(b);
  }

  private int32(n: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(n | 0);
    return this.add(b);
  }

  private end(): this {
    const head = Buffer.allocUnsafe(5);
    head[0] = this.cur![0]!;
    head.writeInt32BE(4 + this.bodyLen, 1);
    this.parts.push(head, ...this.body);
    this.cur = null;
    return this;
  }

  query(sql: string): this {
    return this.begin(FrontendCode.Query).cstring(sql).end();
  }

  parse(name: string, sql: string, paramTypes: readonly number[]): this {
    this.begin(FrontendCode.Parse).cstring(name).cstring(sql).int16(paramTypes.length);
    for (const t of paramTypes) this.int32(t);
    return this.end();
  }

  bind(portal: string, statement: string, paramFormats: readonly number[], params: readonly (Buffer | null)[], resultFormats: readonly number[]): this {
    this.begin(FrontendCode.Bind).cstring(portal).cstring(statement).int16(paramFormats.length);
    for (const f of paramFormats) this.int16(f);
    this.int16(params.length);
    for (const p of params) {
      if (p === null) this.int32(-1);
      else this.int32(p.length).add(p);
    }
    this.int16(resultFormats.length);
    for (const f of resultFormats) this.int16(f);
    return this.end();
  }

  describe(target: 'S' | 'P', name: string): this {
    return this.begin(FrontendCode.Describe).add(Buffer.from(target)).cstring(name).end();
  }

  execute(portal: string, maxRows: number): this {
    return this.begin(FrontendCode.Execute).cstring(portal).int32(maxRows).end();
  }

  close(target: 'S' | 'P', name: string): this {
    return this.begin(FrontendCode.Close).add(Buffer.from(target)).cstring(name).end();
  }

  sync(): this {
    return this.begin(FrontendCode.Sync).end();
  }

  flush(): this {
    return this.begin(FrontendCode.Flush).end();
  }

  copyData(data: Buffer): this {
    return this.begin(FrontendCode.CopyData).add(data).end();
  }

  copyDone(): this {
    return this.begin(FrontendCode.CopyDone).end();
  }

  copyFail(message: string): this {
    return this.begin(FrontendCode.CopyFail).cstring(message).end();
  }

  /** Everything written so far, and starts over. */
  take(): Buffer {
    const out = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    return out;
  }

  get empty(): boolean {
    return this.parts.length === 0;
  }
}
