import { describe, expect, it } from 'vitest';
import { byField, checkSettings, lines, unlines } from './forms';

describe('forms', () => {
  it('edits lists as lines', () => {
    expect(lines(' a \n\n b\n')).toEqual(['a', 'b']);
    expect(unlines(['a', 'b'])).toBe('a\nb');
    expect(unlines(null)).toBe('');
  });
  it('groups field errors', () => {
    expect(byField([{ field: 'cpus', message: 'x' }, { field: 'cpus', message: 'y' }, { field: 'diskGiB', message: 'z' }] as any)).toEqual({
      cpus: ['x', 'y'],
      diskGiB: ['z'],
    });
  });
  it('checks settings as the server does', () => {
    const lim = { maxCPUs: 4, maxMemoryMiB: 8192, drivers: ['qemu'] } as any;
    const ok = { cpus: 2, memoryMiB: 2048, diskGiB: 64, driver: '', sharedFolders: ['/home'], startAtLogin: false, insecureRegistries: ['10.0.0.0/8', 'reg:5000'], registryMirrors: ['https://m.example'], containerLogMiB: 20, httpProxy: 'http://proxy:3128', httpsProxy: '', noProxy: 'localhost' } as any;
    expect(checkSettings(ok, lim)).toEqual([]);
    const bad = { ...ok, cpus: 9, memoryMiB: 100, diskGiB: 4, containerLogMiB: 0, sharedFolders: ['rel/path'], insecureRegistries: ['http://reg'], registryMirrors: ['ftp://x'], httpProxy: 'proxy:3128', httpsProxy: 'http://u:p@proxy:3128' };
    expect(Object.keys(byField(checkSettings(bad, lim))).sort()).toEqual(['containerLogMiB', 'cpus', 'diskGiB', 'httpProxy', 'httpsProxy', 'insecureRegistries', 'memoryMiB', 'registryMirrors', 'sharedFolders']);
  });
});
