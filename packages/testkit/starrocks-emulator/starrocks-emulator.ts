// A StarRocks stand-in for tests: FE HTTP port (Basic auth, 100-continue, 307 to a BE port), BE HTTP port
// (Stream Load with labels, `__op`, partial updates, filtered rows and ErrorURL), FE MySQL port (the DDL
// and SELECTs the sink issues), in-memory Primary Key tables, and fault injection. It follows
// shared/reference/starrocks.md; README.md in this folder lists where it differs from real StarRocks.
import { EmulatedCatalog, type EmulatedColumn, type LabelState } from './emulated-catalog.ts';
import { startMysqlPort } from './mysql-port.ts';
import { formatType } from './sql-parser.ts';
import {
  type EmulatorFault,
  type LoadRecord,
  type RequestRecord,
  startStreamLoadPorts,
} from './stream-load-ports.ts';

export type { EmulatorFault, LoadRecord, RequestRecord };

export interface StarRocksEmulatorOptions {
  /** Default `root`. */
  user?: string;
  /** Default empty, as a fresh StarRocks. */
  password?: string;
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Host named in the FE's 307 Location and in ErrorURLs (default `host`); e.g. an unreachable name to test rewriting. */
  redirectHost?: string;
  /** Serve the FE HTTP port over HTTPS with this certificate (the BE stays plain HTTP, as in StarRocks). */
  tls?: { certPem: string; keyPem: string };
  /** `select current_version()` (default `3.3.5-emulator`). */
  version?: string;
  /** JSON fields that name no column: `ignore` them (default, as StarRocks) or `filter` the row (stricter). */
  unknownFields?: 'filter' | 'ignore';
  /**
   * Behave as a shared-data cluster before StarRocks PR #75338 (issue #75014): within one load on a Primary
   * Key table, deletes are applied after upserts, so a delete followed by a re-upsert of a key loses the
   * re-upsert. Default false (shared-nothing: in order, the last op per key wins).
   */
  sharedData?: boolean;
  /** Largest JSON body in bytes (default 100 MB). */
  maxJsonBytes?: number;
}

export interface EmulatedColumnInfo {
  name: string;
  /** As StarRocks prints it: `VARCHAR(40)`, `DECIMAL(10,2)`, `ARRAY<INT>`. */
  type: string;
  key: boolean;
  nullable: boolean;
}

export interface StarRocksEmulator {
  host: string;
  /** FE HTTP(S) port: Stream Load entry, get_load_state. */
  fePort: number;
  /** BE HTTP port the FE redirects to. */
  bePort: number;
  /** FE MySQL-protocol port. */
  mysqlPort: number;
  user: string;
  password: string;
  /** Column layout of a table, or undefined. */
  table(database: string, table: string): EmulatedColumnInfo[] | undefined;
  /** A table's rows in key order, values as stored (BIGINT/DECIMAL as strings, JSON as text, VARBINARY as Buffers). */
  rows(database: string, table: string): Record<string, unknown>[];
  databases(): string[];
  /** A label's state, `UNKNOWN` when the database never saw it. */
  labelState(database: string, label: string): LabelState | 'UNKNOWN';
  /** Every HTTP request to the FE and BE ports, in order. */
  requests: readonly RequestRecord[];
  /** Every load the BE finished (successful or not), in order. */
  loads: readonly LoadRecord[];
  /** Every statement the MySQL port received, in order. */
  statements: readonly string[];
  faults: {
    /** Queues a one-shot fault; the first matching request consumes it. */
    inject(fault: EmulatorFault): void;
    /** Faults not yet consumed. */
    pending(): readonly EmulatorFault[];
    clear(): void;
  };
  stop(): Promise<void>;
}

export async function startStarRocksEmulator(
  options: StarRocksEmulatorOptions = {},
): Promise<StarRocksEmulator> {
  const host = options.host ?? '127.0.0.1';
  const user = options.user ?? 'root';
  const password = options.password ?? '';
  const catalog = new EmulatedCatalog();
  const mysql = await startMysqlPort({
    catalog,
    user,
    password,
    host,
    version: options.version ?? '3.3.5-emulator',
  });
  const http = await startStreamLoadPorts({
    catalog,
    user,
    password,
    host,
    ...(options.redirectHost === undefined ? {} : { redirectHost: options.redirectHost }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    unknownFields: options.unknownFields ?? 'ignore',
    sharedData: options.sharedData ?? false,
    maxJsonBytes: options.maxJsonBytes ?? 100 * 1024 * 1024,
  });
  const info = (column: EmulatedColumn): EmulatedColumnInfo => ({
    name: column.name,
    type: formatType(column.type),
    key: column.key,
    nullable: column.nullable,
  });
  return {
    host,
    fePort: http.fePort,
    bePort: http.bePort,
    mysqlPort: mysql.port,
    user,
    password,
    table: (database, table) => catalog.findTable(database, table)?.columns.map(info),
    rows(database, table) {
      const found = catalog.findTable(database, table);
      if (!found) return [];
      return [...found.rows.entries()]
        .sort(([a], [b]) => compareKeys(JSON.parse(a) as unknown[], JSON.parse(b) as unknown[]))
        .map(([, row]) => ({ ...row }));
    },
    databases: () => [...catalog.databases.keys()],
    labelState: (database, label) => catalog.labels.get(database)?.get(label)?.state ?? 'UNKNOWN',
    requests: http.requests,
    loads: http.loads,
    statements: mysql.statements,
    faults: {
      inject: (fault) => {
        http.faults.push(fault);
      },
      pending: () => [...http.faults],
      clear: () => {
        http.faults.length = 0;
      },
    },
    async stop() {
      await Promise.all([mysql.close(), http.close()]);
    },
  };
}

function compareKeys(a: unknown[], b: unknown[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const [x, y] = [a[i], b[i]];
    if (x === y) continue;
    const numeric = (v: unknown) => typeof v === 'number' || (typeof v === 'string' && /^-?\d+$/.test(v));
    if (numeric(x) && numeric(y)) {
      const difference = BigInt(x as string | number) - BigInt(y as string | number);
      if (difference !== 0n) return difference < 0n ? -1 : 1;
      continue;
    }
    return String(x) < String(y) ? -1 : 1;
  }
  return a.length - b.length;
}
