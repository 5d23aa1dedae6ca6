// StarRocks identifiers. Names are checked where they enter the sink (once, when a table is first mapped)
// and always quoted with backticks when they reach SQL, so a name that slipped past the check still can't
// change a statement's meaning.
import { StarRocksError } from './starrocks-error.ts';

/**
 * StarRocks accepts letters, digits and underscores; database and table names start with a letter. We keep
 * to ASCII: case-insensitive matching of non-ASCII letters differs between versions.
 */
const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const COLUMN_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_NAME_LENGTH = 64;

/** Virtual columns StarRocks gives a meaning to in loads: a source column with this name can't be mapped. */
const RESERVED_COLUMNS = new Set(['__op']);

export type IdentifierRole = 'database' | 'table' | 'column';

/** Quotes an identifier for StarRocks SQL (backticks, doubled inside). */
export function quoteIdentifier(name: string): string {
  if (name.length === 0) throw new RangeError('empty identifier');
  if (/[\0\r\n]/.test(name)) throw new RangeError('identifier contains a NUL or line break');
  return `\`${name.replaceAll('`', '``')}\``;
}

/** `db`.`table`, both quoted. */
export function qualifiedTable(database: string, table: string): string {
  return `${quoteIdentifier(database)}.${quoteIdentifier(table)}`;
}

/**
 * Refuses a name StarRocks would reject or mangle, with a message that shows it (as JSON, so control and
 * quote characters are visible) and says what would be accepted.
 */
export function checkIdentifier(role: IdentifierRole, name: string, context = ''): string {
  const pattern = role === 'column' ? COLUMN_NAME : TABLE_NAME;
  const where = context ? ` (${context})` : '';
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
  if (!pattern.test(name) || name.length > MAX_NAME_LENGTH) {
    const rule =
      role === 'column'
        ? 'letters A-Z/a-z, digits and underscores, not starting with a digit'
        : 'letters A-Z/a-z, digits and underscores, starting with a letter';
    throw new StarRocksError(
      'operator',
      `StarRocks can't name a ${role} ${shown}${where}: use ${rule}, at most ${MAX_NAME_LENGTH} characters`,
      { solution: `rename the ${role} in PostgreSQL or map it to a StarRocks-safe name in the job` },
    );
  }
  if (
    role === 'column' &&
    (RESERVED_COLUMNS.has(name.toLowerCase()) || name.toLowerCase().startsWith('__sluice_'))
  ) {
    throw new StarRocksError(
      'operator',
      `column ${shown}${where} clashes with a load field (__op, __sluice_…)`,
      {
        solution: 'rename the column in PostgreSQL or exclude it from the job',
      },
    );
  }
  return name;
}
