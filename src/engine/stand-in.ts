import type { User } from '../catalog/model.js';

/**
 * A principal that is not a catalog user (a service account behind an API key, a token's
 * subject) as the User the executor acts as: no password, no expiry, no connection limit.
 */
export function standInUser(p: Pick<User, 'id' | 'name' | 'tenantId' | 'role'> & Partial<User>): User {
  return {
    verifier: null,
    login: true,
    validUntil: null,
    connectionLimit: -1,
    certificateSubject: null,
    createdAt: 0,
    updatedAt: 0,
    createdBy: null,
    ...p,
  };
}
