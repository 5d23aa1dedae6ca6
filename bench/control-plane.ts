import type { Scenario } from './scenario.ts';

export const controlPlane: Scenario = {
  name: 'control-plane',
  title: '5. Control plane',
  async run() {
    return { status: 'skipped', reason: 'not written yet', parameters: {}, rows: [] };
  },
};
