import type { Scenario } from './scenario.ts';

export const freshness: Scenario = {
  name: 'freshness',
  title: '4. Freshness',
  async run() {
    return { status: 'skipped', reason: 'not written yet', parameters: {}, rows: [] };
  },
};
