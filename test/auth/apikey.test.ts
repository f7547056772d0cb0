import { describe, expect, it } from 'vitest';
import { hashKey, newKey, newKeyId, parseKey } from '../../src/auth/apikey.js';

describe('API key format', () => {
  it('is pcu_<16-char id>_<43-char secret><6-char CRC-32> and validates offline', () => {
    const k = newKey(newKeyId());
    expect(k.key).toMatch(/^pcu_[a-z0-9]{16}_[0-9A-Za-z]{49}$/);
    expect(parseKey(k.key)).toEqual({ keyId: k.keyId });
    expect(k.hash).toBe(hashKey(k.key));
    expect(k.hash).toMatch(/^[0-9a-f]{64}$/); // SHA-256, never the key itself
    const other = k.key.slice(0, -1) + (k.key.endsWith('x') ? 'y' : 'x');
    expect(hashKey(other)).not.toBe(k.hash);
  });

  it('rejects a key with any character changed (the checksum catches it)', () => {
    const k = newKey(newKeyId()).key;
    for (const i of [4, 10, 21, 30, 50, k.length - 1]) {
      const c = k[i] === 'a' ? 'b' : 'a';
      const bad = k.slice(0, i) + c + k.slice(i + 1);
      expect(parseKey(bad), `position ${i}`).toBeNull();
    }
    expect(parseKey('pcu_short')).toBeNull();
  });

  it('draws fresh secrets: two keys never share one', () => {
    const id = newKeyId();
    expect(newKey(id).key).not.toBe(newKey(id).key);
  });
});
