import { describe, expect, it } from 'vitest';
import { LogBuffer, filterContainers, highlight } from './search';

const c = (name: string, image: string, state: string, hostPort = 0) =>
  ({ id: name.padEnd(64, '0'), name, image, state, status: state, command: '', created: 0, labels: {}, ports: hostPort ? [{ proto: 'tcp', containerPort: 80, hostPort }] : [] }) as any;

describe('filterContainers', () => {
  const list = [c('web', 'nginx:1.27', 'running', 8080), c('db', 'postgres:16', 'exited'), c('cache', 'redis', 'running')];
  it('matches every word against name, image, state and ports', () => {
    expect(filterContainers(list, '').length).toBe(3);
    expect(filterContainers(list, 'WEB').map((x) => x.name)).toEqual(['web']);
    expect(filterContainers(list, 'running').map((x) => x.name)).toEqual(['web', 'cache']);
    expect(filterContainers(list, 'running redis').map((x) => x.name)).toEqual(['cache']);
    expect(filterContainers(list, '8080').map((x) => x.name)).toEqual(['web']);
    expect(filterContainers(list, 'nothing')).toEqual([]);
  });
});

describe('LogBuffer', () => {
  it('keeps the last lines and finds matches', () => {
    const b = new LogBuffer(3);
    b.push([{ stream: 'stdout', text: 'one' }, { stream: 'stdout', text: 'two' }]);
    b.push([{ stream: 'stderr', text: 'Three' }, { stream: 'stdout', text: 'four' }]);
    expect(b.lines.map((l) => l.text)).toEqual(['two', 'Three', 'four']);
    expect(b.dropped).toBe(1);
    expect(b.search('t')).toEqual([0, 1]);
    expect(b.search('')).toEqual([]);
  });
  it('splits text around matches', () => {
    expect(highlight('Error: error here', 'error')).toEqual([
      { text: 'Error', match: true }, { text: ': ', match: false }, { text: 'error', match: true }, { text: ' here', match: false },
    ]);
    expect(highlight('abc', '')).toEqual([{ text: 'abc', match: false }]);
    expect(highlight('abc', 'x')).toEqual([{ text: 'abc', match: false }]);
  });
});
