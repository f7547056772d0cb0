/** Decoding of quoted lexemes into their values. */

export function unquoteIdentifier(image: string): string {
  return image.slice(1, -1).replaceAll('""', '"');
}

/** '...' (standard), E'...' (backslash escapes) and $tag$...$tag$ (dollar quoting). */
export function unquoteString(image: string): string {
  if (image.startsWith('$')) {
    const tagEnd = image.indexOf('$', 1);
    return image.slice(tagEnd + 1, image.length - (tagEnd + 1));
  }
  if (image[0] === 'E' || image[0] === 'e') return unescapeE(image.slice(2, -1));
  return image.slice(1, -1).replaceAll("''", "'");
}

const SIMPLE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function unescapeE(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === "'" && body[i + 1] === "'") {
      out += "'";
      i++;
    } else if (c === '\\' && i + 1 < body.length) {
      const n = body[++i]!;
      if (n in SIMPLE) out += SIMPLE[n];
      else if (/[0-7]/.test(n)) {
        const m = /^[0-7]{1,3}/.exec(body.slice(i))![0];
        out += String.fromCharCode(parseInt(m, 8));
        i += m.length - 1;
      } else if (n === 'x' && /^[0-9A-Fa-f]/.test(body[i + 1] ?? '')) {
        const m = /^[0-9A-Fa-f]{1,2}/.exec(body.slice(i + 1))![0];
        out += String.fromCharCode(parseInt(m, 16));
        i += m.length;
      } else if ((n === 'u' || n === 'U') && /^[0-9A-Fa-f]{4}/.test(body.slice(i + 1))) {
        const len = n === 'u' ? 4 : 8;
        const m = body.slice(i + 1, i + 1 + len);
        out += String.fromCodePoint(parseInt(m, 16));
        i += len;
      } else out += n;
    } else out += c;
  }
  return out;
}
