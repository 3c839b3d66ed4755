// Drives the desktop frontend, served with the real services by
// internal/tools/desktopweb, in Debian's chromium: pull an image, run a
// container, see it in the list, read its logs, use its terminal, stop and
// delete it; visit every view and screenshot it. Run by the Go test
// TestBrowserFlow (internal/tools/desktopweb), which starts the engine and
// a registry and checks the outcome with the docker CLI.
//
// Env: BASE_URL (with token), IMAGE (to pull), BUILD_DIR (a folder with a
// Dockerfile FROM IMAGE whose RUN says "compiling", waits, says "linked-42"),
// SHOTS (screenshot folder), CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';

const { BASE_URL, IMAGE, BUILD_DIR, SHOTS } = process.env;
if (!BASE_URL || !IMAGE || !BUILD_DIR || !SHOTS) throw new Error('set BASE_URL, IMAGE, BUILD_DIR and SHOTS');
const BUILT = 'e2e/built:1';
const NAME = 'e2e-web';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
const step = (s) => console.log('step:', s);
const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png` });
const nav = (view) => page.click(`nav button[data-view="${view}"]`);
// noError fails the step when the view shows an error box.
const noError = async (where) => {
  const e = await page.$('main .error');
  if (e) throw new Error(`${where} shows an error: ${await e.textContent()}`);
};

try {
  step('home shows the running engine');
  await page.goto(BASE_URL);
  await page.waitForSelector('[data-testid="machine-state"]:has-text("running")');
  await page.waitForSelector('[data-testid="engine-version"]:not(:has-text("not running"))');
  await shot('home');

  step('pull with per-layer progress');
  await nav('images');
  await page.fill('input[aria-label="Image to pull"]', IMAGE);
  await page.click('button:has-text("Pull")');
  await page.waitForSelector('[data-testid="pull-progress"]:has-text("Pulled")', { timeout: 120000 });
  await page.waitForSelector(`tr[data-image="${IMAGE}"]`);
  await shot('images');

  step('build from a folder, output streamed while it runs');
  await page.fill('input[aria-label="Build folder"]', BUILD_DIR);
  await page.fill('input[aria-label="Build tag"]', BUILT);
  await page.click('button:has-text("Build")');
  // The RUN step's first line shows while the build still runs (it waits
  // before its last line): the output streams, it is not shown at the end.
  // BuildKit's plain progress prefixes output with the step's time
  // ("#6 0.123 compiling"); the step's header names the command too.
  await page.waitForSelector('pre.build:text-matches("[0-9]\\.[0-9]+ compiling")', { timeout: 60000 });
  if ((await page.textContent('pre.build')).includes('linked-42') || !(await page.$('button:has-text("Cancel")'))) {
    throw new Error('the build output arrived only at the end');
  }
  await page.waitForSelector(`text=Built ${BUILT}`, { timeout: 60000 });
  await page.waitForSelector('pre.build:has-text("linked-42")');
  await page.waitForSelector(`tr[data-image="${BUILT}"]`);
  await noError('the build');
  await shot('build');

  step('the run dialog shows field errors, then runs');
  await page.click(`tr[data-image="${IMAGE}"] button:has-text("Run")`);
  await page.fill('input[aria-label="Container name"]', NAME);
  await page.fill('textarea[aria-label="Ports"]', '80:99999');
  // Some work each second, so the stats graph has a shape.
  await page.fill('input[aria-label="Command"]', `sh -c 'echo hello from the window; echo to stderr >&2; while true; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1; done'`);
  await page.click('form[aria-label="Run a container"] button[type="submit"]');
  await page.waitForSelector('.field-error:has-text("bad container port")');
  await shot('run-dialog');
  await page.fill('textarea[aria-label="Ports"]', '');
  await page.click('form[aria-label="Run a container"] button[type="submit"]');

  step('the container is listed running, with its logs');
  const row = `tr[data-container="${NAME}"]`;
  await page.waitForSelector(`${row} [data-testid="state"]:has-text("running")`);
  await page.waitForSelector('[data-testid="logs"]:has-text("hello from the window")');
  await page.waitForSelector('[data-testid="logs"] .stderr:has-text("to stderr")');
  await page.fill('input[aria-label="Search logs"]', 'hello');
  await page.waitForSelector('[data-testid="logs"] mark:has-text("hello")');
  await shot('containers');

  step('inspect and stats');
  await page.click('button[data-tab="inspect"]');
  await page.waitForSelector(`pre.inspect:has-text("/${NAME}")`);
  await page.click('button[data-tab="stats"]');
  // Real samples from the engine: a memory reading against the limit, and a
  // graph of at least two points. An idle container draws flat lines, which
  // have no height, so the graph is waited for in the DOM, not as visible.
  await page.waitForFunction(() => /\d.* \/ \d/.test(document.querySelector('[data-testid="mem"]')?.textContent ?? ''), null, { timeout: 20000 });
  // Eight samples (one a second) make a graph worth a screenshot.
  await page.waitForFunction(() => (document.querySelector('svg polyline')?.getAttribute('points') ?? '').split(' ').length >= 8, null, { timeout: 30000 });
  await noError('the stats pane');
  await shot('stats');

  step('the terminal runs a shell in the container');
  await page.click('button[data-tab="terminal"]');
  await page.waitForSelector('[data-testid="terminal"] .xterm-screen');
  await page.click('[data-testid="terminal"]');
  await page.keyboard.type('echo $((6*7))berth\n');
  await page.waitForFunction(() => document.querySelector('[data-testid="terminal"]')?.textContent?.includes('42berth'), null, { timeout: 15000 });
  await shot('terminal');

  step('stop from the list');
  await page.click(`${row} button:has-text("Stop")`);
  await page.waitForSelector(`${row} [data-testid="state"]:has-text("exited")`, { timeout: 30000 });

  step('volumes');
  await nav('volumes');
  for (const v of ['e2e-data', 'e2e-scratch']) {
    await page.fill('input[aria-label="Volume name"]', v);
    await page.click('button:has-text("Create")');
    await page.waitForSelector(`tr[data-volume="${v}"]`, { timeout: 15000 });
    await noError(`creating volume ${v}`);
  }
  await page.fill('input[aria-label="Volume name"]', 'no good!');
  await page.click('button:has-text("Create")');
  await page.waitForSelector('main .error:has-text("no good!")');
  await page.fill('input[aria-label="Volume name"]', 'e2e-gone');
  await page.click('button:has-text("Create")');
  await page.waitForSelector('tr[data-volume="e2e-gone"]', { timeout: 15000 });
  await noError('creating volume e2e-gone');
  await page.click('tr[data-volume="e2e-gone"] button:has-text("Delete")');
  await page.waitForSelector('tr[data-volume="e2e-gone"]', { state: 'detached', timeout: 15000 });
  await shot('volumes');

  step('settings validate next to their fields');
  await nav('settings');
  await page.waitForSelector('input[aria-label="CPUs"]');
  await page.fill('input[aria-label="CPUs"]', '999');
  await page.fill('textarea[aria-label="Registry mirrors"]', 'ftp://mirror');
  await page.waitForSelector('.field-error[data-field="cpus"]');
  await page.waitForSelector('.field-error[data-field="registryMirrors"]');
  await shot('settings');
  await page.click('button:has-text("Save")');
  await page.waitForSelector('.field-error[data-field="cpus"]:has-text("must be between 1 and")');
  await page.fill('input[aria-label="CPUs"]', '1');
  await page.fill('textarea[aria-label="Registry mirrors"]', 'https://mirror.example');
  // A proxy with a password is refused by name (it would travel on the
  // VM's kernel command line); a plain one is saved.
  await page.fill('input[aria-label="HTTP proxy"]', 'http://user:secret@proxy.example:3128');
  await page.waitForSelector('.field-error[data-field="httpProxy"]:has-text("not supported yet")');
  await page.fill('input[aria-label="HTTP proxy"]', 'http://proxy.example:3128');
  await page.fill('input[aria-label="No proxy"]', 'localhost,.example');
  await page.click('button:has-text("Save")');
  await page.waitForSelector('.saved:has-text("Saved")');

  step('troubleshoot');
  await nav('troubleshoot');
  await page.waitForSelector('h1:has-text("Troubleshoot")');
  await page.waitForSelector('.facts');
  await shot('troubleshoot');

  step('bulk delete');
  await nav('containers');
  await page.check(`${row} input[type="checkbox"]`);
  await page.click('.bulkbar button:has-text("delete")');
  await page.waitForSelector(row, { state: 'detached', timeout: 30000 });

  if (errors.length) throw new Error('page errors: ' + errors.join('; '));
  console.log('flow: ok');
} catch (e) {
  await shot('failure').catch(() => {});
  console.error('flow failed:', e.message, errors.length ? '\npage errors: ' + errors.join('; ') : '');
  process.exitCode = 1;
} finally {
  await browser.close();
}
