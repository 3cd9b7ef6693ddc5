import { describe, expect, it } from 'vitest';
import { metricNames } from '../../helpers/deploy/promql.js';

describe('metricNames', () => {
  it('takes selectors with and without label matchers', () => {
    expect(metricNames('up')).toEqual(['up']);
    expect(metricNames('mirrorgate_inflight_fetches{job="mirrorgate-mirror", pod=~"a|b"} > 3')).toEqual(['mirrorgate_inflight_fetches']);
  });

  it('leaves out functions, aggregations and the label lists of by, without, on, ignoring and group_left', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, kind) (rate(a_bucket[5m])))')).toEqual(['a_bucket']);
    expect(metricNames('sum without (reason) (increase(b_total{reason=~"size|free_space"}[6h])) > 0.5 * (c > 0)')).toEqual(['b_total', 'c']);
    expect(metricNames('sum(rate(a[5m])) by (upstream) / on(upstream) group_left(pod) max(b)')).toEqual(['a', 'b']);
    expect(metricNames('a / ignoring(kind) b')).toEqual(['a', 'b']);
  });

  it('leaves out keywords, numbers, durations, offsets, strings and Grafana variables', () => {
    expect(metricNames('(a > 0) - time() < 14 * 86400 and b unless c or d offset 5m')).toEqual(['a', 'b', 'c', 'd']);
    expect(metricNames('rate(a[$__rate_interval]) > 1e3 == bool 2')).toEqual(['a']);
    expect(metricNames('label_replace(a, "dst", "$1", "src", "(by|sum)")')).toEqual(['a']);
    expect(metricNames('max_over_time(a[1h:5m]) > $threshold')).toEqual(['a']);
  });

  it('takes every metric of an absent() or an or', () => {
    expect(metricNames('max by (job) (up{job="m"}) == 0 or absent(up{job="m"})')).toEqual(['up']);
    expect(metricNames('x or absent(y)')).toEqual(['x', 'y']);
  });
});
