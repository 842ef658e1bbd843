// The clinic screen in a real browser (Debian's Chromium through playwright-core) against a real
// `medge demo`: login on the PIN pad, live ECG, glucose, acknowledging an alert and finding the
// audit row, the stethoscope panel, the language switch, least privilege for a technician, and no
// request leaving 127.0.0.1. Screenshots go to test/artifacts/ui/ (ignored by git).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../device-sdk/store/ledger.js';
import { readAuditEntries, SqliteOutboxStore } from '../../device-sdk/store/sqlite-outbox-store.js';
import { parseRuntimeConfig } from '../../firmware/config.js';
import { hashPin } from '../../firmware/ui/auth.js';
import { ClinicServer } from '../../firmware/ui/server.js';
import { medgeBackground, ROOT } from '../helpers/cli.js';
import { systemAvailable } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const chromiumFound = systemAvailable('chromium', existsSync(CHROMIUM), 'chromium');
const ARTIFACTS = join(ROOT, 'test', 'artifacts', 'ui');

async function login(page: Page, user: string, pin: string): Promise<void> {
  await page.locator(`#login-users [data-user="${user}"]`).click();
  for (const digit of pin) await page.locator(`#keypad [data-key="${digit}"]`).click();
  await page.locator('#login-submit').click();
  await page.locator('#app').waitFor({ state: 'visible' });
}

/**
 * A clinic screen on a fresh ledger that `seed` fills, in a fresh headless Chromium, logged in as
 * `user` with `pin`; everything is closed and removed after `body`.
 */
async function withScreen(deviceId: string, user: { name: string; role: 'operator' | 'clinician'; pin: string }, seed: (ledger: Ledger) => void, body: (page: Page) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `medge-ui-${deviceId}-`));
  const store = new SqliteOutboxStore(join(dir, 'ledger.sqlite'), { deviceId });
  const ledger = new Ledger(store);
  seed(ledger);
  ledger.flush();
  const config = parseRuntimeConfig({ deviceId, dataDir: dir, ui: { enabled: true, listen: '127.0.0.1:0', users: [{ name: user.name, role: user.role, pinHash: hashPin(user.pin, { N: 1024 }) }] } }, dir);
  const server = new ClinicServer({ config, store, status: () => undefined });
  const url = await server.start();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'], headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 800, height: 480 } });
    await page.goto(url);
    await page.locator('#login').waitFor({ state: 'visible' });
    await login(page, user.name, user.pin);
    await body(page);
  } finally {
    await browser.close();
    await server.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!chromiumFound)('clinic screen in Chromium against medge demo (needs chromium: apt-get install -y chromium)', () => {
  let dataDir: string;
  let demo: ReturnType<typeof medgeBackground>;
  let browser: Browser;
  let url: string;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dataDir = mkdtempSync(join(tmpdir(), 'medge-ui-'));
    demo = medgeBackground(['demo', '--data', dataDir, '--ui', '127.0.0.1:0']);
    await waitFor(() => /clinic screen at (http:\/\/127\.0\.0\.1:\d+\/)/.test(demo.output()), 'the demo to print the clinic screen address', 30_000, 100);
    url = (/clinic screen at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(demo.output()) as RegExpExecArray)[1] as string;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'], headless: true });
  });

  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('logs in, shows live data, acknowledges an alert into the audit log, switches language, keeps every request on 127.0.0.1', async () => {
    const context = await browser.newContext({ viewport: { width: 800, height: 480 }, hasTouch: true, locale: 'en-US' });
    const requests: string[] = [];
    const offDevice: string[] = [];
    // Every request the page makes, including ones the interception would have let through.
    context.on('request', (request) => requests.push(request.url()));
    await context.route('**/*', async (route) => {
      const target = new URL(route.request().url());
      if (target.protocol !== 'data:' && target.protocol !== 'blob:' && target.hostname !== '127.0.0.1') {
        offDevice.push(route.request().url());
        await route.abort('blockedbyclient');
      } else await route.continue();
    });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(url);
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.screenshot({ path: join(ARTIFACTS, '01-login.png') });

    // A wrong PIN is refused.
    await page.locator('#login-users [data-user="clinician"]').click();
    await page.locator('#pin').fill('9999');
    await page.locator('#login-submit').click();
    await expect.poll(() => page.locator('#login-error').textContent()).toContain('Wrong PIN');

    await login(page, 'clinician', '2222');

    // Live ECG: the strip is drawn and changes over time.
    await page.locator('#panel-ecg').waitFor({ state: 'visible' });
    await page.locator('#ecg-waiting').waitFor({ state: 'hidden', timeout: 20_000 });
    const frame = () => page.locator('#ecg-canvas').evaluate((c) => (c as unknown as { toDataURL(): string }).toDataURL());
    const before = await frame();
    await page.waitForTimeout(1500);
    const after = await frame();
    expect(after).not.toBe(before);
    await expect.poll(() => page.locator('#ecg-hr').textContent(), { timeout: 20_000 }).toMatch(/^\d+$/);
    await expect.poll(() => page.locator('#ecg-findings .support').count(), { timeout: 20_000 }).toBeGreaterThan(0);
    await page.screenshot({ path: join(ARTIFACTS, '02-ecg.png') });

    // Glucose: a reading in mg/dL, the trend chart.
    await page.locator('.tab[data-tab="glucose"]').click();
    await expect.poll(() => page.locator('#glucose-value').textContent(), { timeout: 20_000 }).toMatch(/^\d+$/);
    const glucose = Number(await page.locator('#glucose-value').textContent());
    expect(glucose).toBeGreaterThanOrEqual(40);
    expect(glucose).toBeLessThanOrEqual(400);
    await expect.poll(() => page.locator('#glucose-arrow').textContent(), { timeout: 20_000 }).not.toBe('');
    await page.screenshot({ path: join(ARTIFACTS, '03-glucose.png') });

    // Alerts: acknowledge one; the page shows who acknowledged it and the audit log holds the row.
    await page.locator('.tab[data-tab="alerts"]').click();
    const ackButton = page.locator('#alerts-list button.ack').first();
    await ackButton.waitFor({ state: 'visible', timeout: 30_000 });
    await expect.poll(() => page.locator('#alerts-list li .support').first().textContent()).toMatch(/review by a clinician/);
    const seq = Number(await ackButton.getAttribute('data-seq'));
    await page.screenshot({ path: join(ARTIFACTS, '04-alerts.png') });
    await ackButton.click();
    await expect.poll(() => page.locator(`#alerts-list li[data-seq="${seq}"] .acked-by`).textContent()).toContain('clinician/clinician');
    await page.locator('.tab[data-tab="audit"]').click();
    const auditRow = page.locator('#audit-rows tr[data-action="alert-ack"]', { hasText: `alert ${seq} ` });
    await auditRow.waitFor({ state: 'visible' });
    await expect.poll(() => page.locator('#audit-chain').textContent()).toMatch(/intact/);
    await page.screenshot({ path: join(ARTIFACTS, '05-audit.png') });
    const ledger = join(dataDir, 'device', 'ledger.sqlite');
    const entries = readAuditEntries(ledger);
    expect(entries.filter((e) => e.action === 'alert-ack' && e.detail.startsWith(`alert ${seq} `)).map((e) => e.actor)).toEqual(['clinician/clinician']);
    for (const action of ['ui-login', 'ui-login-failed', 'ui-view-live', 'ui-view-history', 'ui-view-alerts', 'ui-view-audit']) {
      expect(entries.some((e) => e.action === action), action).toBe(true);
    }

    // Stethoscope: the last recording from the ledger, drawn as a phonocardiogram.
    await page.locator('.tab[data-tab="pcg"]').click();
    expect(await page.locator('#pcg-empty').isVisible()).toBe(true);
    await page.locator('#pcg-last').click();
    await page.locator('#pcg-empty').waitFor({ state: 'hidden' });
    expect(await page.locator('#pcg-replay').isEnabled()).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, '06-stethoscope.png') });

    // Language: Simplified Chinese everywhere, then back.
    await page.locator('#lang').click();
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
    expect(await page.locator('.tab[data-tab="ecg"]').textContent()).toBe('心电图');
    expect(await page.locator('#logout').textContent()).toBe('退出登录');
    await page.locator('.tab[data-tab="alerts"]').click();
    expect(await page.locator('#alerts-list li .support').first().textContent()).toMatch(/请临床医生复核/);
    await page.screenshot({ path: join(ARTIFACTS, '07-alerts-zh.png') });
    await page.locator('#lang').click();
    expect(await page.locator('.tab[data-tab="ecg"]').textContent()).toBe('ECG');

    // Keyboard: the tabs move with the arrow keys.
    await page.locator('.tab[data-tab="alerts"]').focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.locator('.tab[data-tab="device"]').getAttribute('aria-selected')).toBe('true');
    await expect.poll(() => page.locator('#device-status dd').count()).toBeGreaterThan(4);
    // What each analysis runs on: the demo's signed models, once loaded.
    await expect.poll(() => page.locator('#device-status').textContent(), { timeout: 30_000 }).toMatch(/ECG analysis\s*ecg-beats@\d/);
    expect(await page.locator('#device-status').textContent()).toMatch(/Heart-sound screen\s*pcg-abnormal@\d/);

    // A technician sees configuration and health, and the server refuses patient data.
    await page.locator('#logout').click();
    await page.locator('#login').waitFor({ state: 'visible' });
    await login(page, 'technician', '3333');
    expect(await page.locator('.tab[data-tab="ecg"]').isHidden()).toBe(true);
    expect(await page.locator('.tab[data-tab="config"]').isVisible()).toBe(true);
    await page.locator('#panel-device').waitFor({ state: 'visible' });
    const refused = await page.evaluate(async () => {
      const statuses: number[] = [];
      for (const path of ['/api/history?kind=reading', '/api/alerts', '/api/pcg']) statuses.push((await fetch(path)).status);
      return statuses;
    });
    expect(refused).toEqual([403, 403, 403]);
    await page.locator('.tab[data-tab="config"]').click();
    await expect.poll(() => page.locator('#config-view').textContent()).toContain('"deviceId"');
    expect(await page.locator('#config-view').textContent()).not.toContain('pinHash');
    await page.screenshot({ path: join(ARTIFACTS, '08-technician.png') });

    expect(pageErrors).toEqual([]);
    expect(offDevice).toEqual([]);
    expect(requests.length).toBeGreaterThan(10);
    for (const request of requests) expect(new URL(request).hostname).toBe('127.0.0.1');
    await context.close();
  }, 120_000);
});

describe.skipIf(!chromiumFound)('clinic screen panels with analytics findings (needs chromium)', () => {
  it('shows S1/S2 marks, the screening result, the glucose forecast and the consensus metrics the ledger holds', async () => {
    await withScreen(
      'panels',
      { name: 'dr', role: 'clinician', pin: '2222' },
      (ledger) => {
        const t0 = Date.UTC(2026, 0, 1, 8);
        const samples = Int16Array.from({ length: 4000 }, (_, i) => Math.round(800 * Math.sin(i / 3) * Math.exp(-(((i % 1000) - 50) ** 2) / 800)));
        ledger.add('chunk', { sensor: 'pcg', channel: 0, firstSample: 0, t0, rateHz: 4000, unit: 'au', gain: 1, samples });
        const base = { probability: 0.87, inputQuality: 0.9, modelId: 'pcg-abnormal@1', modelSha256: 'aa' };
        ledger.add('finding', { ...base, kind: 'pcg-screening', label: 'normal', t: t0 + 1000, evidence: JSON.stringify({ s1: [t0 + 12, t0 + 262, t0 + 512, t0 + 762], s2: [t0 + 130, t0 + 380, t0 + 630, t0 + 880] }) });
        for (let i = 0; i < 12; i++) ledger.add('reading', { sensor: 'cgm', type: 'glucose', value: 150 - i * 5, unit: 'mg/dL', tDevice: t0 + i * 300_000 });
        const last = t0 + 11 * 300_000;
        ledger.add('finding', { ...base, kind: 'glucose-trend', label: 'falling', value: -1, t: last, modelId: 'rule:glucose-trend@1' });
        ledger.add('finding', { ...base, kind: 'glucose-forecast', label: 'predicted-low', value: 68, t: last, intervalEnd: last + 30 * 60_000, modelId: 'glucose-forecast@1' });
        ledger.add('finding', { ...base, kind: 'glucose-metrics', label: 'consensus', t: last, evidence: JSON.stringify({ 'TIR 70-180 %': 100, 'TBR <70 %': 0, 'mean mg/dL': 122.5, 'GMI %': 5.9, 'CV %': 11.8 }), modelId: 'cgm-metrics@1' });
      },
      async (page) => {
        await page.locator('.tab[data-tab="pcg"]').click();
        await page.locator('#pcg-last').click();
        await page.locator('#pcg-empty').waitFor({ state: 'hidden' });
        await expect.poll(() => page.locator('#pcg-result').textContent()).toContain('S1 4, S2 4');
        const result = await page.locator('#pcg-result').textContent();
        expect(result).toContain('normal');
        expect(result).toContain('probability 87%');
        expect(result).toContain('review by a clinician');
        await page.screenshot({ path: join(ARTIFACTS, '09-stethoscope-marks.png') });
        await page.locator('.tab[data-tab="glucose"]').click();
        await expect.poll(() => page.locator('#glucose-value').textContent()).toBe('95');
        expect(await page.locator('#glucose-arrow').textContent()).toBe('↘');
        expect(await page.locator('#glucose-forecast').textContent()).toContain('68 mg/dL in 30 min');
        expect(await page.locator('#glucose-metrics').textContent()).toContain('GMI %5.9');
        await page.screenshot({ path: join(ARTIFACTS, '10-glucose-forecast.png') });
      },
    );
  }, 60_000);
});

describe.skipIf(!chromiumFound)('clinic screen with 10,000 alerts (needs chromium)', () => {
  it('lists the old unacknowledged urgent alert first, counts every open alert in the badge and says how many are not listed', async () => {
    await withScreen(
      'alerts',
      { name: 'nurse', role: 'operator', pin: '1111' },
      (ledger) => {
        const t0 = Date.UTC(2026, 0, 1, 8);
        ledger.addAlert({ kind: 'ventricular-run', severity: 3, message: 'Sustained ventricular run suspected', t: t0, sensor: 'ecg' });
        for (let i = 1; i <= 10_000; i++) ledger.addAlert({ kind: 'sample-rate-unvalidated', severity: 1, message: `information ${i}`, t: t0 + i * 1000, sensor: 'ecg' });
      },
      async (page) => {
        // Before: the page loaded the newest 100 alerts, so the urgent one (seq 1) was missing and the badge said 100.
        await expect.poll(() => page.locator('#alert-badge').textContent(), { timeout: 15_000 }).toBe('10001');
        await page.locator('.tab[data-tab="alerts"]').click();
        expect(await page.locator('#alerts-list li[data-seq]').first().getAttribute('data-seq')).toBe('1');
        // The server sends the newest 100 and the 500 most severe open ones (seq 1 and the newest 499 information alerts overlap the 100).
        expect(await page.locator('#alerts-list li[data-seq]').count()).toBe(500);
        expect(await page.locator('#alerts-hidden').textContent()).toContain('9501 more unacknowledged alerts');
        await page.locator('#alerts-list li[data-seq="1"] button.ack').click();
        await expect.poll(() => page.locator('#alert-badge').textContent()).toBe('10000');
        await page.screenshot({ path: join(ARTIFACTS, '11-many-alerts.png') });
      },
    );
  }, 90_000);
});
