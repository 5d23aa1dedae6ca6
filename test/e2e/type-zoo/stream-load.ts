// A direct Stream Load into the sink, outside the product: how the test corrupts one stored value (and puts
// it back) to prove the comparator notices. A partial update, so only that column of that row changes.
import { randomBytes } from 'node:crypto';
import http from 'node:http';

export interface StreamLoadTarget {
  host: string;
  /** The BE port (the emulator's `bePort`; a real cluster's FE redirects there). */
  bePort: number;
  user: string;
  password: string;
}

export async function partialUpdate(
  target: StreamLoadTarget,
  database: string,
  table: string,
  rows: Record<string, unknown>[],
  columns: string[],
): Promise<Record<string, unknown>> {
  const body = Buffer.from(JSON.stringify(rows));
  const answer = await new Promise<string>((resolve, reject) => {
    const request = http.request(
      {
        host: target.host,
        port: target.bePort,
        method: 'PUT',
        path: `/api/${database}/${table}/_stream_load`,
        headers: {
          authorization: `Basic ${Buffer.from(`${target.user}:${target.password}`).toString('base64')}`,
          expect: '100-continue',
          label: `type_zoo_test_${randomBytes(6).toString('hex')}`,
          format: 'json',
          strip_outer_array: 'true',
          partial_update: 'true',
          columns: columns.join(','),
          'content-length': String(body.length),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.on('continue', () => request.end(body));
  });
  const parsed = JSON.parse(answer) as Record<string, unknown>;
  if (parsed.Status !== 'Success') throw new Error(`test stream load failed: ${answer}`);
  return parsed;
}
