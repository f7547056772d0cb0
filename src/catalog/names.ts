import unhomoglyph from 'unhomoglyph';
import { caseFold } from 'unicode-case-folding';

/** Names sort by code point, like PostgreSQL's "C" collation: stable across machines. */
export const compareNames = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A key that sorts by tenant id, then name. */
export const tenantScoped = (tenantId: number, name: string): string => `${String(tenantId).padStart(10, '0')}/${name}`;

/**
 * The tables a skeleton comes from: Unicode's confusables.txt 13.0.0 (the unhomoglyph
 * package) and CaseFolding.txt 17.0 (unicode-case-folding). It names the catalog's
 * look-alike indexes, so a snapshot whose skeletons were computed from other tables is
 * re-indexed at load (Table.load decodes a chunk written under other index names) rather
 * than looked up with stale keys. Change it whenever either package changes.
 */
export const SKELETON_TABLES = 'confusables-13.0.0/casefolding-17.0';

/** TR39 (since Unicode 15.1) drops these from a skeleton: they have no appearance. */
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;

/**
 * The Unicode TR39 confusable skeleton of a name's case-folded form: two names
 * look alike when these are equal — `admin`, `аdmin` (a Cyrillic а), `ADMIN`, `adrnin`.
 * Full case folding (C + F of CaseFolding.txt, not toLowerCase: Cherokee folds to upper
 * case, ẞ to ss) on the canonical decomposition, then TR39's skeleton: NFD, drop
 * default-ignorables, each character to its prototype, NFD again. A key for comparing,
 * never shown (`m` becomes `rn`).
 */
export function nameSkeleton(name: string): string {
  const folded = caseFold(name.normalize('NFD')).normalize('NFD').replace(IGNORABLE, '');
  return unhomoglyph(folded).normalize('NFD');
}
