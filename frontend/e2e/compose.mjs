// Drives the Containers view with a real Compose project (started by
// `docker compose up` in the Go test TestBrowserCompose,
// internal/tools/desktopweb): its containers are grouped under the project,
// and the whole project is stopped, started and deleted from the page.
//
// Env: BASE_URL (with token), PROJECT (the project's name, two services
// web and worker), SOLO (a container of no project), SHOTS (screenshots),
// CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';

const { BASE_URL, PROJECT, SOLO, SHOTS } = process.env;
if (!BASE_URL || !PROJECT || !SOLO || !SHOTS) throw new Error('set BASE_URL, PROJECT, SOLO and SHOTS');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
const step = (s) => console.log('step:', s);
const project = `tr[data-project="${PROJECT}"]`;
const count = `${project} [data-testid="project-count"]`;
const web = `tr[data-container="${PROJECT}-web-1"]`;
const worker = `tr[data-container="${PROJECT}-worker-1"]`;

try {
  step('the project groups its containers');
  await page.goto(BASE_URL);
  await page.click('nav button[data-view="containers"]');
  await page.waitForSelector(`${count}:has-text("2/2 running")`);
  for (const [row, svc] of [[web, 'web'], [worker, 'worker']]) {
    await page.waitForSelector(`${row} [data-testid="service"]:has-text("${svc}")`);
  }
  await page.waitForSelector(`tr[data-container="${SOLO}"]`);
  // The project's rows come right after its header, the solo container is
  // not among them.
  const order = await page.$$eval('tbody tr', (rows) => rows.map((r) => r.dataset.project || r.dataset.container));
  const at = order.indexOf(PROJECT);
  if (at < 0 || new Set(order.slice(at + 1, at + 3)).size !== 2 || !order.slice(at + 1, at + 3).every((n) => n.startsWith(PROJECT + '-'))) {
    throw new Error('rows not grouped under the project: ' + order.join(', '));
  }
  await page.screenshot({ path: `${SHOTS}/compose.png` });

  step('stop the whole project');
  await page.click(`${project} button:has-text("Stop all")`);
  await page.waitForSelector(`${count}:has-text("0/2 running")`, { timeout: 60000 });
  await page.waitForSelector(`${web} [data-testid="state"]:has-text("exited")`);
  await page.waitForSelector(`tr[data-container="${SOLO}"] [data-testid="state"]:has-text("running")`);

  step('start it again');
  await page.click(`${project} button:has-text("Start all")`);
  await page.waitForSelector(`${count}:has-text("2/2 running")`, { timeout: 60000 });

  step('collapse and expand');
  await page.click(`${project} button[aria-label="Collapse ${PROJECT}"]`);
  await page.waitForSelector(web, { state: 'detached' });
  await page.click(`${project} button[aria-label="Expand ${PROJECT}"]`);
  await page.waitForSelector(web);

  step('delete the project');
  await page.click(`${project} button:has-text("Delete project")`);
  await page.waitForSelector(project, { state: 'detached', timeout: 60000 });
  await page.waitForSelector(web, { state: 'detached' });
  await page.waitForSelector(`tr[data-container="${SOLO}"]`);
  const err = await page.$('main .error, main .field-error');
  if (err) throw new Error('the view shows an error: ' + (await err.textContent()));

  if (errors.length) throw new Error('page errors: ' + errors.join('; '));
  console.log('compose: ok');
} catch (e) {
  await page.screenshot({ path: `${SHOTS}/failure.png` }).catch(() => {});
  console.error('compose flow failed:', e.message, errors.length ? '\npage errors: ' + errors.join('; ') : '');
  process.exitCode = 1;
} finally {
  await browser.close();
}
