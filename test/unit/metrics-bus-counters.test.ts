import { describe, expect, it } from 'vitest';
import { createMetrics, type MetricsSource } from '../../coordinator/api/index.js';

const engine = {
  nodes: { all: () => [], effectiveState: () => 'Ready', liveness: () => undefined },
  converged: () => true,
  clusterNames: () => [],
  unplacedFor: () => [],
  events: { lastSeq: 0 },
} as unknown as MetricsSource['engine'];

const sample = (text: string, name: string): number | undefined => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

describe('metrics: the bus counters', () => {
  it("each scrape shows the bus's running totals, not a sum of scrapes", async () => {
    const totals = { heartbeats: 5, malformed: 1 };
    const metrics = createMetrics();
    metrics.observe({ engine, busCounters: () => totals });
    let text = await metrics.render();
    expect(sample(text, 'drover_heartbeats_total')).toBe(5);
    expect(sample(text, 'drover_malformed_messages_total')).toBe(1);
    totals.heartbeats = 12;
    text = await metrics.render();
    expect(sample(text, 'drover_heartbeats_total')).toBe(12);
    expect(sample(text, 'drover_malformed_messages_total')).toBe(1);
  });

  it('shows 0 when no bus is observed', async () => {
    const metrics = createMetrics();
    metrics.observe({ engine });
    const text = await metrics.render();
    expect(sample(text, 'drover_heartbeats_total')).toBe(0);
  });
});
