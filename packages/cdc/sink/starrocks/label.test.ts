import { describe, expect, it } from 'vitest';
import { isValidLabel, MAX_LABEL_LENGTH, streamLoadLabel } from './label.ts';

const parts = { job: 'job42', epoch: 3, startLsn: 0x16b374d848n, endLsn: 0x16b374d900n };

describe('Stream Load labels', () => {
  it('are readable and deterministic for plain names', () => {
    const label = streamLoadLabel(parts, 'orders');
    expect(label).toBe('sluice_job42_orders_3_16b374d848_16b374d900');
    expect(streamLoadLabel({ ...parts }, 'orders')).toBe(label);
    expect(streamLoadLabel(parts, 'orders', 2)).toBe(`${label}_2`);
  });

  it('differ when any part differs', () => {
    const labels = new Set([
      streamLoadLabel(parts, 'orders'),
      streamLoadLabel({ ...parts, job: 'job43' }, 'orders'),
      streamLoadLabel({ ...parts, epoch: 4 }, 'orders'),
      streamLoadLabel({ ...parts, startLsn: 1n }, 'orders'),
      streamLoadLabel({ ...parts, endLsn: 0x16b374d901n }, 'orders'),
      streamLoadLabel(parts, 'orders2'),
      streamLoadLabel(parts, 'orders', 1),
      streamLoadLabel(parts, 'order_s'),
      streamLoadLabel({ ...parts, job: 'job42_orders' }, 's'),
      streamLoadLabel({ ...parts, job: 'a-b' }, 'c'),
      streamLoadLabel({ ...parts, job: 'a_b' }, 'c'),
    ]);
    expect(labels.size).toBe(11);
  });

  it('are hashed when a name needs characters a label cannot hold, or is long, and stay valid', () => {
    const uuidJob = { ...parts, job: '6f1c2a7e-8d4b-4c1e-9a3f-2b7d5e6c8a90' };
    const cases = [
      streamLoadLabel(uuidJob, 'orders'),
      streamLoadLabel(parts, 'order_lines'),
      streamLoadLabel(parts, 'ünïcødé table'),
      streamLoadLabel({ ...parts, job: 'j'.repeat(200) }, 't'.repeat(200), 99),
      streamLoadLabel(
        { ...parts, epoch: 2n ** 63n, startLsn: 2n ** 64n - 1n, endLsn: 2n ** 64n - 1n },
        'x'.repeat(70),
      ),
    ];
    for (const label of cases) {
      expect(isValidLabel(label), label).toBe(true);
      expect(label.length).toBeLessThanOrEqual(MAX_LABEL_LENGTH);
      expect(label).toMatch(/_[0-9a-f]{40}$/);
    }
    expect(streamLoadLabel(uuidJob, 'orders')).toBe(cases[0]);
  });
});
