// The stats graph: a window of samples drawn as SVG polylines.

export interface Sample {
  time: number;
  cpuPercent: number;
  memBytes: number;
  memLimit: number;
  netRx: number;
  netTx: number;
}

/** pushSample appends s and keeps the last n samples. */
export function pushSample(list: Sample[], s: Sample, n = 60): Sample[] {
  const out = list.concat(s);
  return out.length > n ? out.slice(out.length - n) : out;
}

/** points maps values onto a w×h box (max at the top), newest at the right
 * edge, one step per slot of n. */
export function points(values: number[], w: number, h: number, max: number, n = 60): string {
  if (values.length === 0) return '';
  const step = w / Math.max(1, n - 1);
  const x0 = w - step * (values.length - 1);
  const top = max > 0 ? max : 1;
  return values
    .map((v, i) => {
      const x = x0 + i * step;
      const y = h - (Math.min(Math.max(v, 0), top) / top) * h;
      return x.toFixed(1) + ',' + y.toFixed(1);
    })
    .join(' ');
}

/** cpuScale picks the graph's top: 100% per CPU in use, at least 100. */
export function cpuScale(values: number[]): number {
  const m = Math.max(0, ...values);
  return Math.max(100, Math.ceil(m / 100) * 100);
}

/** memScale picks the memory graph's top: the next 1, 2 or 5 × 10^n above
 * the largest sample, capped at the limit. Against the limit alone (often
 * the whole machine) a small container's line would lie on the floor. */
export function memScale(values: number[], limit: number): number {
  const m = Math.max(0, ...values);
  if (m <= 0) return limit > 0 ? limit : 1;
  const p = 10 ** Math.floor(Math.log10(m));
  const top = [1, 2, 5, 10].map((k) => k * p).find((t) => t > m) ?? 10 * p;
  return limit > 0 ? Math.min(top, limit) : top;
}
