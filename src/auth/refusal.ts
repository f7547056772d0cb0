/**
 * Why a login was refused, as a stable code. The failure's metric label
 * (portcullis_logins_total{reason="..."}) is its code, never words picked out of its
 * message: a message names users, keys, providers and token headers, which a client
 * chooses, and may be reworded freely. The codes are the label values the server has
 * always exported, so dashboards and alerts keep working. The message (the real reason)
 * still goes to the server log and the audit trail, as it always has.
 */
export const REFUSAL_CODES = [
  'expired',
  'not_yet_valid',
  'issued_in_the_future',
  'signature',
  'algorithm',
  'audience',
  'issuer',
  'unknown_kid',
  'larger_than',
  'malformed',
  'jwks',
  'no_enabled_oidc_provider',
  'disabled',
  'no_longer_exists',
  'grace',
  'locked_out',
  'wrong_secret',
  'unknown_api_key',
  'not_a_well-formed',
  'wrong_password',
  'unknown_user',
  'nologin',
  'other',
] as const;

export type RefusalCode = (typeof REFUSAL_CODES)[number];

/** A refusal: its code (the metric label) and its real reason (the log and the audit trail). */
export interface Refusal {
  code: RefusalCode;
  reason: string;
}
