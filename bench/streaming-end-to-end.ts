import type { Scenario } from './scenario.ts';

export const streamingEndToEnd: Scenario = {
  name: 'streaming-end-to-end',
  title: '2. Streaming end to end',
  async run() {
    return { status: 'skipped', reason: 'not written yet', parameters: {}, rows: [] };
  },
};
