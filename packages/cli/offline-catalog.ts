// The commands that work on the catalog itself, without a running control plane (`admin create` before
// any admin exists, `keys rotate --offline` while no control plane writes): the catalog is found exactly as
// the control plane finds it — DATABASE_URL[_FILE], else the embedded one under SLUICE_DATA_DIR.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { CatalogSource } from '@sluice/control-plane';
import { usageError } from './cli-error.ts';
import { type FlagSpec, type FlagValues, stringFlag } from './command-table.ts';

export const CATALOG_FLAGS: Record<string, FlagSpec> = {
  'database-url-file': {
    type: 'string',
    value: 'FILE',
    env: 'DATABASE_URL_FILE',
    description: 'file holding the catalog URL (postgres://…); DATABASE_URL is read too',
  },
  'data-dir': {
    type: 'string',
    value: 'DIR',
    env: 'SLUICE_DATA_DIR',
    default: './.sluice',
    description: 'the control plane data directory, for the embedded catalog (when no URL is given)',
  },
};

export function catalogSource(flags: FlagValues, env: NodeJS.ProcessEnv): CatalogSource {
  const file = stringFlag(flags, 'database-url-file');
  if (file && env.DATABASE_URL) throw usageError('set either DATABASE_URL or DATABASE_URL_FILE, not both');
  let url = env.DATABASE_URL?.trim();
  if (file) {
    try {
      url = readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw usageError(
        `cannot read --database-url-file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url))
      throw usageError('DATABASE_URL must be a postgres:// or postgresql:// URL');
    return { kind: 'url', url };
  }
  return { kind: 'embedded', dataDir: path.resolve(stringFlag(flags, 'data-dir') || '.sluice') };
}

/** Log lines of offline work go to stderr, warnings and up unless SLUICE_LOG_LEVEL says otherwise. */
export const stderrLog = { write: (line: string) => void process.stderr.write(line) };
