import { describe, expect, it } from 'vitest';
import type { PgColumnType, TableSchema } from '../../change-event.ts';
import { addColumnSql, createTableSql, dropColumnSql, mapTable, truncateTableSql } from './schema.ts';

const type = (name: string, modifier = -1): PgColumnType => ({ oid: 0, name, modifier, kind: 'base' });

const schema: TableSchema = {
  table: { schema: 'sales', name: 'order_lines' },
  columns: [
    { name: 'note', type: type('text'), nullable: true },
    { name: 'amount', type: type('numeric', ((12 << 16) | 2) + 4), nullable: false },
    { name: 'line', type: type('int4'), nullable: false },
    { name: 'order_id', type: type('uuid'), nullable: false },
  ],
  primaryKey: ['order_id', 'line'],
};

describe('Primary Key table DDL', () => {
  it('puts key columns first in key order, NOT NULL, and everything else NULL', () => {
    const mapping = mapTable(schema, 'warehouse', 'sales_order_lines');
    expect(createTableSql(mapping, { replicationNum: 1, buckets: 4 })).toBe(
      'create table if not exists `warehouse`.`sales_order_lines` (\n' +
        '  `order_id` VARCHAR(36) not null,\n' +
        '  `line` INT not null,\n' +
        '  `note` VARCHAR(1048576) null,\n' +
        '  `amount` DECIMAL(12, 2) null\n' +
        ') primary key (`order_id`, `line`)\n' +
        'distributed by hash(`order_id`, `line`) buckets 4\n' +
        'properties ("replication_num" = "1", "fast_schema_evolution" = "true")',
    );
  });

  it('leaves out properties StarRocks versions before 3.2 would refuse when asked', () => {
    const mapping = mapTable(schema, 'warehouse', 'lines');
    expect(createTableSql(mapping, { fastSchemaEvolution: false })).not.toMatch(/properties/);
  });

  it('adds, drops and truncates with quoted names', () => {
    const mapping = mapTable(schema, 'warehouse', 'lines');
    const note = mapping.columns.find((column) => column.name === 'note')!;
    expect(addColumnSql(mapping, note)).toBe(
      'alter table `warehouse`.`lines` add column `note` VARCHAR(1048576) null',
    );
    expect(dropColumnSql(mapping, 'note')).toBe('alter table `warehouse`.`lines` drop column `note`');
    expect(truncateTableSql(mapping)).toBe('truncate table `warehouse`.`lines`');
  });

  it('refuses a table without a primary key or replica identity', () => {
    expect(() => mapTable({ ...schema, primaryKey: [] }, 'warehouse', 'lines')).toThrow(/no primary key/);
  });
});
