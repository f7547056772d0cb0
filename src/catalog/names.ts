/** Names sort by code point, like PostgreSQL's "C" collation: stable across machines. */
export const compareNames = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A key that sorts by tenant id, then name. */
export const tenantScoped = (tenantId: number, name: string): string => `${String(tenantId).padStart(10, '0')}/${name}`;
