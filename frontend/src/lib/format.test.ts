import { describe, expect, it } from 'vitest';
import { ago, bootSteps, bytes, errText, mib, pullSummary, shortId, statusLine } from './format';

describe('format', () => {
  it('renders sizes in SI units as docker does', () => {
    expect(bytes(0)).toBe('0 B');
    expect(bytes(999)).toBe('999 B');
    expect(bytes(1500)).toBe('1.5 kB');
    expect(bytes(4_400_000)).toBe('4.4 MB');
    expect(bytes(123_000_000)).toBe('123 MB');
    expect(bytes(-1)).toBe('–');
    expect(mib(512)).toBe('512 MiB');
    expect(mib(2048)).toBe('2 GiB');
    expect(mib(1536)).toBe('1.5 GiB');
  });
  it('says how long ago', () => {
    const now = 1_700_000_000_000;
    expect(ago(now / 1000 - 5, now)).toBe('5s ago');
    expect(ago(now / 1000 - 125, now)).toBe('2m ago');
    expect(ago(now / 1000 - 7200, now)).toBe('2h ago');
    expect(ago(now / 1000 - 3 * 86400, now)).toBe('3d ago');
    expect(ago(0, now)).toBe('');
  });
  it('shortens IDs and error values', () => {
    expect(shortId('sha256:0123456789abcdef0123')).toBe('0123456789ab');
    expect(errText('pull x: not found')).toBe('pull x: not found');
    expect(errText(new Error('boom'))).toBe('boom');
  });
  it('totals pull progress over layers', () => {
    expect(pullSummary([])).toEqual({ done: 0, count: 0, current: 0, total: 0, percent: 0 });
    const s = pullSummary([
      { id: 'a', status: 'Downloading', current: 50, total: 100 },
      { id: 'b', status: 'Already exists', current: 0, total: 0 },
      { id: 'c', status: 'Waiting', current: 0, total: 100 },
    ]);
    expect(s).toEqual({ done: 1, count: 3, current: 50, total: 200, percent: 25 });
    expect(pullSummary([{ id: 'a', status: 'Pull complete', current: 10, total: 100 }]).percent).toBe(100);
  });

  it('keeps the part of the status that stays true', () => {
    expect(statusLine('exited', 'Exited (137) 2 minutes ago')).toBe('Exited (137)');
    expect(statusLine('running', 'Up 3 minutes')).toBe('');
    expect(statusLine('running', 'Up 3 minutes (healthy)')).toBe('(healthy)');
    expect(statusLine('created', 'Created')).toBe('');
  });
  it('lists the phases of a start as they end, then those running', () => {
    const steps = bootSteps([
      { name: 'kernel', label: 'Booting Linux', startMs: 200, endMs: 1250 },
      { name: 'vm', label: 'Starting the virtual machine', startMs: 0, endMs: 200 },
      { name: 'engine-start', label: 'Starting the engine', startMs: 1300, endMs: 1500, running: true },
      { name: 'disk', label: '', startMs: 1300, endMs: 1350 },
    ]);
    expect(steps).toEqual([
      { label: 'Starting the virtual machine', seconds: '0.20 s', running: false },
      { label: 'Booting Linux', seconds: '1.05 s', running: false },
      { label: 'disk', seconds: '0.05 s', running: false },
      { label: 'Starting the engine', seconds: '', running: true },
    ]);
    expect(bootSteps(undefined)).toEqual([]);
  });
});
