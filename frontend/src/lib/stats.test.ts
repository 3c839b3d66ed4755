import { describe, expect, it } from 'vitest';
import { cpuScale, memScale, points, pushSample } from './stats';

describe('stats graph', () => {
  it('keeps a window of samples', () => {
    let l: any[] = [];
    for (let i = 0; i < 5; i++) l = pushSample(l, { time: i } as any, 3);
    expect(l.map((s) => s.time)).toEqual([2, 3, 4]);
  });
  it('maps values into the box, newest at the right', () => {
    expect(points([], 100, 50, 10)).toBe('');
    expect(points([0, 5, 10], 100, 50, 10, 3)).toBe('0.0,50.0 50.0,25.0 100.0,0.0');
    // Fewer samples than slots start further right; values clamp to the box.
    expect(points([20], 100, 50, 10, 3)).toBe('100.0,0.0');
  });
  it('scales CPU to 100% per busy CPU', () => {
    expect(cpuScale([])).toBe(100);
    expect(cpuScale([12, 40])).toBe(100);
    expect(cpuScale([150])).toBe(200);
  });
  it('scales memory to a round figure above the samples, within the limit', () => {
    expect(memScale([], 0)).toBe(1);
    expect(memScale([], 512)).toBe(512);
    expect(memScale([300_000, 420_000], 8e9)).toBe(500_000);
    expect(memScale([1_500_000], 8e9)).toBe(2_000_000);
    expect(memScale([1_000_000], 8e9)).toBe(2_000_000);
    expect(memScale([900], 1000)).toBe(1000);
  });
});
