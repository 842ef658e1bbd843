// The clinic screen's page logic: login, tabs, live data over Server-Sent Events, and the panels.
// The server enforces every permission; this code only hides what the server would refuse.
// All text comes from i18n.js. Data is inserted with textContent, never as HTML.
/* global document, window, fetch, EventSource, AudioContext, requestAnimationFrame */
import { applyTranslations, language, savedLanguage, setLanguage, t } from './i18n.js';
import { drawGlucose, drawPcg, EcgStrip } from './charts.js';

const $ = (id) => document.getElementById(id);
const RECORD_SECONDS = 5;
const FINDINGS_SHOWN = 8;

const state = {
  session: undefined,
  users: [],
  chosenUser: undefined,
  tab: undefined,
  events: undefined,
  status: undefined,
  alerts: new Map(),
  /** Unacknowledged alerts the server counted but did not send (beyond its limit). */
  unackedHidden: 0,
  findings: { ecg: [], pcg: [], glucose: [], other: [] },
  glucose: [],
  heartRate: undefined,
  ecgSensor: undefined,
  pcg: undefined,
  pcgBusy: false,
  playing: undefined,
  config: undefined,
  audit: undefined,
};

let strip;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== false) node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) if (child !== undefined && child !== null) node.append(child);
  return node;
}

function can(permission) {
  return state.session?.permissions.includes(permission) ?? false;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    method: options.method ?? 'GET',
    credentials: 'same-origin',
    headers: options.body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let body = {};
  try {
    body = await response.json();
  } catch {
    // empty body
  }
  if (response.status === 401 && path !== '/api/login') showLogin(t('error.login-required'));
  return { status: response.status, ok: response.ok, body };
}

function time(ms) {
  return new Date(ms).toLocaleTimeString(language(), { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function pct(p) {
  return `${Math.round(p * 100)}%`;
}

// ---- login -------------------------------------------------------------------------------------

async function loadUsers() {
  const { body } = await api('/api/users');
  state.users = body.users ?? [];
  $('device-id').textContent = body.deviceId ?? '';
  return body;
}

function renderUsers() {
  const box = $('login-users');
  box.replaceChildren();
  if (state.users.length === 0) box.append(el('p', { class: 'error', text: t('login.noUsers') }));
  for (const user of state.users) {
    const chosen = state.chosenUser === user.name;
    box.append(
      el(
        'button',
        {
          type: 'button',
          class: 'user',
          role: 'radio',
          'aria-checked': chosen ? 'true' : 'false',
          'data-user': user.name,
          onclick: () => {
            state.chosenUser = user.name;
            renderUsers();
            $('pin').focus();
          },
        },
        user.name,
        el('small', { text: t(`role.${user.role}`) }),
      ),
    );
  }
}

function showLogin(message = '') {
  closeEvents();
  state.session = undefined;
  strip?.stop();
  $('app').hidden = true;
  $('login').hidden = false;
  $('logout').hidden = true;
  $('who').hidden = true;
  $('link-state').hidden = true;
  $('pin').value = '';
  $('login-error').textContent = message;
  renderUsers();
}

async function login(event) {
  event.preventDefault();
  const pin = $('pin').value;
  if (!state.chosenUser && state.users.length === 1) state.chosenUser = state.users[0].name;
  let result;
  try {
    result = await api('/api/login', { method: 'POST', body: { user: state.chosenUser ?? '', pin } });
  } catch {
    $('login-error').textContent = t('login.error.network');
    return;
  }
  $('pin').value = '';
  if (!result.ok) {
    const reason = result.body.error ?? 'wrong-pin';
    $('login-error').textContent = t(`login.error.${reason}`, { seconds: Math.ceil((result.body.retryAfterMs ?? 0) / 1000) });
    return;
  }
  startSession(result.body);
}

function keypad(event) {
  const key = event.target.closest('[data-key]')?.dataset.key;
  if (key === undefined) return;
  const pin = $('pin');
  if (key === 'clear') pin.value = '';
  else if (key === 'back') pin.value = pin.value.slice(0, -1);
  else if (pin.value.length < 12) pin.value += key;
}

async function logout() {
  await api('/api/logout', { method: 'POST', body: {} });
  state.chosenUser = undefined;
  showLogin();
}

// ---- session and tabs --------------------------------------------------------------------------

function startSession(session) {
  state.session = session;
  state.alerts.clear();
  state.unackedHidden = 0;
  state.findings = { ecg: [], pcg: [], glucose: [], other: [] };
  state.glucose = [];
  state.heartRate = undefined;
  state.config = undefined;
  state.audit = undefined;
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  $('who').hidden = false;
  renderWho();
  const tabs = [...document.querySelectorAll('.tab')];
  for (const tab of tabs) tab.hidden = !can(tab.dataset.needs);
  const first = tabs.find((tab) => !tab.hidden);
  openEvents();
  if (can('view-patient-data')) void loadHistory();
  selectTab(first?.dataset.tab ?? 'device');
}

function renderWho() {
  if (!state.session) return;
  $('who').textContent = `${state.session.user} · ${t(`role.${state.session.role}`)}`;
}

function selectTab(name) {
  state.tab = name;
  for (const tab of document.querySelectorAll('.tab')) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute('aria-selected', selected ? 'true' : 'false');
    tab.tabIndex = selected ? 0 : -1;
  }
  for (const panel of document.querySelectorAll('.panel')) panel.hidden = panel.id !== `panel-${name}`;
  if (name === 'ecg') {
    strip.reset();
    strip.start();
  } else strip.stop();
  if (name === 'config') void loadConfig();
  if (name === 'audit') void loadAudit();
  renderTab();
}

function tabKeys(event) {
  const tabs = [...document.querySelectorAll('.tab')].filter((tab) => !tab.hidden);
  const index = tabs.findIndex((tab) => tab.dataset.tab === state.tab);
  let next;
  if (event.key === 'ArrowRight') next = tabs[(index + 1) % tabs.length];
  else if (event.key === 'ArrowLeft') next = tabs[(index - 1 + tabs.length) % tabs.length];
  else if (event.key === 'Home') next = tabs[0];
  else if (event.key === 'End') next = tabs[tabs.length - 1];
  if (next) {
    event.preventDefault();
    selectTab(next.dataset.tab);
    next.focus();
  }
}

function renderTab() {
  renderBadge();
  if (state.tab === 'ecg') renderEcg();
  else if (state.tab === 'pcg') renderPcg();
  else if (state.tab === 'glucose') renderGlucose();
  else if (state.tab === 'alerts') renderAlerts();
  else if (state.tab === 'device') renderDevice();
  else if (state.tab === 'config') renderConfig();
  else if (state.tab === 'audit') renderAudit();
}

// ---- live data ---------------------------------------------------------------------------------

function openEvents() {
  closeEvents();
  const source = new EventSource('/api/events');
  state.events = source;
  source.addEventListener('open', () => ($('stream-state').hidden = true));
  source.addEventListener('error', async () => {
    $('stream-state').hidden = false;
    if (source.readyState === EventSource.CLOSED && state.session) {
      const check = await api('/api/session');
      if (check.ok) setTimeout(() => state.session && openEvents(), 2000);
    }
  });
  source.addEventListener('status', (e) => {
    state.status = JSON.parse(e.data);
    renderLink();
    if (state.tab === 'device') renderDevice();
  });
  source.addEventListener('chunk', (e) => {
    const chunk = JSON.parse(e.data);
    if (state.ecgSensor === undefined) state.ecgSensor = chunk.sensor;
    if (chunk.sensor !== state.ecgSensor) return;
    strip.push(chunk.samples, chunk.gain, chunk.rateHz);
    $('ecg-waiting').hidden = true;
  });
  source.addEventListener('reading', (e) => addReading(JSON.parse(e.data), true));
  source.addEventListener('finding', (e) => addFinding(JSON.parse(e.data), true));
  source.addEventListener('alert', (e) => {
    const alert = JSON.parse(e.data);
    state.alerts.set(alert.seq, alert);
    renderBadge();
    if (state.tab === 'alerts') renderAlerts();
  });
}

function closeEvents() {
  state.events?.close();
  state.events = undefined;
}

function addReading(r, live) {
  if (r.type === 'glucose') {
    state.glucose.push(r);
    if (state.glucose.length > 500) state.glucose.shift();
    if (live && state.tab === 'glucose') renderGlucose();
  } else if (r.type === 'heart-rate' && r.context?.method === 'ecg-qrs') {
    state.heartRate = r;
    if (live && state.tab === 'ecg') renderHeartRate();
  } else if (r.type === 'heart-rate' && state.heartRate === undefined) {
    state.heartRate = r;
  }
}

function addFinding(f, live) {
  const list = state.findings[f.panel] ?? state.findings.other;
  list.push(f);
  if (list.length > 200) list.shift();
  if (live && state.tab === f.panel) renderTab();
}

async function loadHistory() {
  const [glucose, findings, alerts, hr] = await Promise.all([
    api('/api/history?kind=reading&type=glucose&limit=300'),
    api('/api/history?kind=finding&limit=300'),
    api('/api/alerts?limit=100'),
    api('/api/history?kind=reading&type=heart-rate&limit=1'),
  ]);
  const known = new Set(state.glucose.map((r) => r.seq));
  state.glucose = [...(glucose.body.readings ?? []).filter((r) => !known.has(r.seq)), ...state.glucose];
  const seen = new Set(Object.values(state.findings).flat().map((f) => f.seq));
  for (const f of findings.body.findings ?? []) if (!seen.has(f.seq)) addFinding(f, false);
  for (const panel of Object.keys(state.findings)) state.findings[panel].sort((a, b) => a.seq - b.seq);
  for (const a of alerts.body.alerts ?? []) if (!state.alerts.has(a.seq)) state.alerts.set(a.seq, a);
  const open = alerts.body.unacknowledged;
  state.unackedHidden = open ? Math.max(0, open.total - open.shown) : 0;
  for (const r of hr.body.readings ?? []) if (state.heartRate === undefined) state.heartRate = r;
  renderTab();
}

// ---- findings ----------------------------------------------------------------------------------

function findingItem(f) {
  const value = f.value === undefined || f.value === null ? '' : ` (${f.value})`;
  return el(
    'li',
    { 'data-seq': String(f.seq) },
    el('div', { class: 'finding-title', text: `${f.kind}${f.sensor ? ` [${f.sensor}]` : ''}: ${f.label}${value}` }),
    el(
      'div',
      { class: 'muted', text: [time(f.t), t('finding.probability', { value: pct(f.probability) }), t('finding.quality', { value: pct(f.inputQuality) }), t('finding.model', { id: f.modelId })].join(' · ') },
    ),
    el('div', { class: 'support', text: t('decision.support') }),
  );
}

function renderFindings(list, target) {
  const box = $(target);
  const items = list.slice(-FINDINGS_SHOWN).reverse().map(findingItem);
  box.replaceChildren(...(items.length ? items : [el('li', { class: 'muted', text: t('finding.none') })]));
}

// ---- ECG ---------------------------------------------------------------------------------------

function renderHeartRate() {
  $('ecg-hr').textContent = state.heartRate ? String(Math.round(state.heartRate.value)) : '--';
}

function renderEcg() {
  renderHeartRate();
  $('ecg-sensor').textContent = state.ecgSensor ?? '';
  const ecg = state.findings.ecg;
  const beats = ecg.filter((f) => /beat/i.test(f.kind));
  if (beats.length) {
    const counts = new Map();
    for (const f of beats.slice(-100)) counts.set(f.label, (counts.get(f.label) ?? 0) + 1);
    $('ecg-beats').textContent = [...counts].map(([label, n]) => `${label} ${n}`).join(' · ');
  } else $('ecg-beats').textContent = t('ecg.beats.none');
  const af = ecg.filter((f) => /(^|[-_])(af|afib)([-_]|$)|atrial|fibrill/i.test(f.kind)).at(-1);
  $('ecg-af').textContent = af ? `${af.label} · ${t('finding.probability', { value: pct(af.probability) })}` : t('ecg.af.none');
  // Per-beat findings are summarised above; the list keeps the rest (rate, rhythm, quality).
  renderFindings(beats.length ? ecg.filter((f) => !/beat/i.test(f.kind)) : ecg, 'ecg-findings');
}

// ---- stethoscope -------------------------------------------------------------------------------

function pcgSamples(recording) {
  const out = [];
  for (const c of recording.chunks) for (const s of c.samples) out.push(s / (c.gain || 1));
  return out;
}

/** S1/S2 marks of a heart-sound finding: its evidence as JSON `{"s1": [ms...], "s2": [ms...]}` (device clock). */
function pcgMarks(recording, finding) {
  const marks = { s1: [], s2: [] };
  const first = recording?.chunks[0];
  if (!finding?.evidence || !first) return marks;
  let evidence;
  try {
    evidence = JSON.parse(finding.evidence);
  } catch {
    return marks;
  }
  for (const key of ['s1', 's2']) {
    const list = Array.isArray(evidence?.[key]) ? evidence[key] : [];
    marks[key] = list.map((ms) => ((Number(ms) - first.t0) * first.rateHz) / 1000).filter((i) => i >= 0 && i < recording.samples.length);
  }
  return marks;
}

async function fetchPcg() {
  const { ok, body } = await api(`/api/pcg?seconds=${RECORD_SECONDS}`);
  if (!ok) return;
  const recording = { ...body, samples: [] };
  recording.samples = pcgSamples(recording);
  state.pcg = recording;
  for (const f of body.findings ?? []) if (!state.findings.pcg.some((g) => g.seq === f.seq)) state.findings.pcg.push(f);
  renderPcg();
}

async function recordPcg() {
  if (state.pcgBusy) return;
  state.pcgBusy = true;
  let left = RECORD_SECONDS;
  renderPcgButtons(left);
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      left -= 1;
      renderPcgButtons(left);
      if (left <= 0) {
        clearInterval(timer);
        resolve();
      }
    }, 1000);
  });
  state.pcgBusy = false;
  await fetchPcg();
}

function renderPcgButtons(left) {
  $('pcg-record').textContent = state.pcgBusy ? t('pcg.recording', { seconds: left }) : t('pcg.record', { seconds: RECORD_SECONDS });
  $('pcg-record').disabled = state.pcgBusy;
  $('pcg-replay').disabled = !(state.pcg?.samples.length > 0) || state.pcgBusy;
}

function replayPcg() {
  const recording = state.pcg;
  if (!recording || recording.samples.length === 0) return;
  const rate = recording.chunks[0].rateHz;
  const duration = recording.samples.length / rate;
  try {
    const audio = new AudioContext();
    const buffer = audio.createBuffer(1, recording.samples.length, rate);
    const data = buffer.getChannelData(0);
    let peak = 1e-9;
    for (const s of recording.samples) peak = Math.max(peak, Math.abs(s));
    recording.samples.forEach((s, i) => (data[i] = (s / peak) * 0.9));
    const node = audio.createBufferSource();
    node.buffer = buffer;
    node.connect(audio.destination);
    node.start();
    node.addEventListener('ended', () => void audio.close());
    $('pcg-state').textContent = t('pcg.playing');
  } catch {
    $('pcg-state').textContent = t('pcg.audioUnavailable');
  }
  const started = performance.now();
  const frame = (now) => {
    const cursor = (now - started) / 1000 / duration;
    if (cursor >= 1 || state.pcg !== recording) {
      state.playing = undefined;
      $('pcg-state').textContent = '';
      renderPcg();
      return;
    }
    state.playing = cursor;
    renderPcg();
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

function renderPcg() {
  renderPcgButtons(RECORD_SECONDS);
  const recording = state.pcg;
  const has = recording !== undefined && recording.samples.length > 0;
  $('pcg-empty').hidden = has;
  const finding = state.findings.pcg.at(-1);
  drawPcg($('pcg-canvas'), has ? recording.samples : [], has ? pcgMarks(recording, finding) : { s1: [], s2: [] }, state.playing);
  const box = $('pcg-result');
  if (!finding) {
    box.replaceChildren(el('p', { class: 'placeholder', text: t('pcg.noResult') }));
    return;
  }
  const marks = has ? pcgMarks(recording, finding) : { s1: [], s2: [] };
  box.replaceChildren(
    el('p', { class: 'big', text: finding.label }),
    el('p', { class: 'muted', text: `${t('finding.probability', { value: pct(finding.probability) })} · ${t('finding.quality', { value: pct(finding.inputQuality) })} · ${t('finding.model', { id: finding.modelId })}` }),
    el('p', { class: 'muted', text: marks.s1.length + marks.s2.length > 0 ? `${t('pcg.marks')}: S1 ${marks.s1.length}, S2 ${marks.s2.length}` : t('pcg.marks.none') }),
    el('p', { class: 'support', text: t('decision.support') }),
  );
}

// ---- glucose -----------------------------------------------------------------------------------

const ARROWS = { 'rising-fast': '⇈', rising: '↗', stable: '→', falling: '↘', 'falling-fast': '⇊' };

function renderGlucose() {
  const readings = state.glucose.map((r) => ({ ...r, value: r.unit === 'mmol/L' ? r.value * 18.016 : r.value }));
  const last = readings.at(-1);
  $('glucose-value').textContent = last ? String(Math.round(last.value)) : '--';
  $('glucose-empty').hidden = last !== undefined;
  const findings = state.findings.glucose;
  const trend = findings.filter((f) => f.kind === 'glucose-trend' || /trend/.test(f.kind)).at(-1);
  $('glucose-arrow').textContent = trend ? (ARROWS[trend.label] ?? '') : '';
  $('glucose-trend').textContent = trend ? `${t(`glucose.trend.${ARROWS[trend.label] ? trend.label : 'unknown'}`)}${trend.value !== undefined ? ` (${trend.value} mg/dL/min)` : ''}` : t('glucose.trend.unknown');
  const forecastFinding = findings.filter((f) => /forecast|predict/i.test(f.kind) && typeof f.value === 'number').at(-1);
  let forecast;
  if (forecastFinding) {
    const target = forecastFinding.intervalEnd ?? forecastFinding.t;
    forecast = { value: forecastFinding.value, tTarget: target };
    $('glucose-forecast').replaceChildren(
      el('span', { text: t('glucose.forecast.value', { value: Math.round(forecastFinding.value), minutes: Math.max(0, Math.round((target - forecastFinding.t) / 60_000)) }) }),
      el('span', { class: 'muted', text: ` · ${forecastFinding.label}` }),
    );
  } else $('glucose-forecast').textContent = t('glucose.forecast.none');
  const metrics = findings.filter((f) => /metric|consensus|tir|time-in-range/i.test(f.kind)).at(-1);
  if (metrics) {
    let parsed;
    try {
      parsed = JSON.parse(metrics.evidence ?? '');
    } catch {
      parsed = undefined;
    }
    const rows = parsed && typeof parsed === 'object' ? Object.entries(parsed) : [[metrics.label, metrics.value ?? '']];
    $('glucose-metrics').replaceChildren(el('dl', { class: 'kv' }, ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })])));
  } else $('glucose-metrics').textContent = t('glucose.metrics.none');
  const first = readings[0];
  drawGlucose($('glucose-canvas'), readings, forecast, { start: first ? time(first.tDevice) : '', end: last ? time(forecast ? Math.max(forecast.tTarget, last.tDevice) : last.tDevice) : '' });
  renderFindings(findings, 'glucose-findings');
}

// ---- alerts ------------------------------------------------------------------------------------

function alertTitle(a) {
  const key = `alert.${a.kind}`;
  const text = t(key);
  return text === key ? t('alert.other', { kind: a.kind }) : text;
}

function renderBadge() {
  const open = [...state.alerts.values()].filter((a) => !a.ack).length + state.unackedHidden;
  $('alert-badge').hidden = open === 0;
  $('alert-badge').textContent = String(open);
  $('alert-badge').setAttribute('aria-label', t('alerts.unacked', { count: open }));
}

async function acknowledge(seq, button) {
  button.disabled = true;
  const { ok, status, body } = await api(`/api/alerts/${seq}/ack`, { method: 'POST', body: {} });
  if ((ok || status === 409) && body.alert) {
    state.alerts.set(seq, body.alert);
    renderAlerts();
    renderBadge();
  } else {
    button.disabled = false;
    button.after(el('span', { class: 'error', text: t('alerts.ackFailed', { error: body.error ?? status }) }));
  }
}

function renderAlerts() {
  const list = [...state.alerts.values()].sort((a, b) => Number(Boolean(a.ack)) - Number(Boolean(b.ack)) || b.severity - a.severity || b.seq - a.seq);
  const box = $('alerts-list');
  if (list.length === 0) {
    box.replaceChildren(el('li', { class: 'muted', text: t('alerts.none') }));
    return;
  }
  const hidden = state.unackedHidden > 0 ? [el('li', { class: 'muted', id: 'alerts-hidden', text: t('alerts.hidden', { count: state.unackedHidden }) })] : [];
  box.replaceChildren(
    ...hidden,
    ...list.map((a) => {
      const actions = el('div', { class: 'alert-actions' });
      if (a.ack) actions.append(el('span', { class: 'acked-by', text: t('alerts.acked', { actor: a.ack.actor, time: time(a.ack.tMs) }) }));
      else if (can('ack-alerts')) {
        const button = el('button', { type: 'button', class: 'btn primary ack', 'data-seq': String(a.seq), text: t('alerts.ack') });
        button.addEventListener('click', () => void acknowledge(a.seq, button));
        actions.append(button);
      }
      return el(
        'li',
        { class: `sev-${a.severity}${a.ack ? ' acked' : ''}`, 'data-seq': String(a.seq), 'data-kind': a.kind },
        el('div', {}, el('span', { class: 'sev', text: t(`severity.${a.severity}`) }), el('span', { class: 'finding-title', text: alertTitle(a) })),
        el('div', { class: 'muted', text: `${time(a.t)}${a.sensor ? ` · ${a.sensor}` : ''}` }),
        el('div', { text: a.message }),
        el('div', { class: 'support', text: t('decision.support') }),
        actions,
      );
    }),
  );
}

// ---- device, configuration, audit --------------------------------------------------------------

function bytes(n) {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}

function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} ${t('unit.s')}`;
  if (s < 7200) return `${Math.round(s / 60)} ${t('unit.min')}`;
  return `${(s / 3600).toFixed(1)} ${t('unit.h')}`;
}

function renderLink() {
  const link = state.status?.link;
  const pill = $('link-state');
  pill.hidden = link === undefined;
  if (link) {
    pill.className = `pill ${link}`;
    pill.textContent = t(`device.link.${link}`);
  }
}

function renderDevice() {
  const s = state.status;
  const box = $('device-status');
  if (!s) {
    box.replaceChildren(el('p', { class: 'muted', text: t('device.waiting') }));
    return;
  }
  const share = Math.min(1, s.storage.bytesUsed / s.storage.budgetBytes);
  const kv = (label, value) => [el('dt', { text: label }), el('dd', {}, value)];
  box.replaceChildren(
    el(
      'dl',
      { class: 'kv' },
      ...kv(t('device.id'), s.deviceId),
      ...kv(t('device.link'), t(`device.link.${s.link}`)),
      ...kv(t('device.lastAck'), s.lastAckMs ? time(s.lastAckMs) : t('device.lastAck.never')),
      ...kv(t('device.uptime'), duration(s.uptimeMs)),
      ...kv(
        t('device.storage'),
        el(
          'span',
          {},
          `${t('device.storage.value', { used: bytes(s.storage.bytesUsed), budget: bytes(s.storage.budgetBytes) })}${s.storage.overBudget ? ` · ${t('device.storage.full')}` : ''}`,
          el('progress', { class: 'meter', max: '1', value: share.toFixed(4) }),
        ),
      ),
      ...kv(t('device.backlog'), Object.entries(s.backlog).map(([k, n]) => `${t(`kind.${k}`)} ${n}`).join(' · ')),
      ...kv(t('device.quarantined'), String(s.quarantined)),
      ...(s.analysis ?? []).flatMap((a) =>
        kv(
          t(`device.analysis.${a.analyzer}`),
          a.state === 'model'
            ? a.algo
            : a.state === 'loading'
              ? t('device.analysis.loading')
              : el('span', { class: 'warning', text: `${t('device.analysis.fallback', { algo: a.algo })}${a.reason ? ` · ${a.reason}` : ''}` }),
        ),
      ),
    ),
    el('h3', { text: t('device.sensors') }),
    el(
      'ul',
      { class: 'findings' },
      ...s.sensors.map((sensor) =>
        el('li', { text: `${sensor.sensor} (${sensor.source}) · ${t(sensor.connected ? 'device.sensor.connected' : 'device.sensor.disconnected')} · ${sensor.rate} ${sensor.rateUnit}` }),
      ),
    ),
  );
}

async function loadConfig() {
  const { ok, body } = await api('/api/config');
  state.config = ok ? body.config : { error: t('error.forbidden') };
  renderConfig();
}

function renderConfig() {
  $('config-view').textContent = state.config ? JSON.stringify(state.config, null, 2) : '';
}

async function loadAudit() {
  const { ok, body } = await api('/api/audit?limit=100');
  state.audit = ok ? body : undefined;
  renderAudit();
}

function renderAudit() {
  const audit = state.audit;
  if (!audit) return;
  $('audit-chain').textContent = audit.chain.ok
    ? t('audit.chain.ok', { entries: audit.chain.entries })
    : t('audit.chain.broken', { id: audit.chain.firstBreak?.id, reason: audit.chain.firstBreak?.reason });
  $('audit-rows').replaceChildren(
    ...audit.entries
      .slice()
      .reverse()
      .map((e) => el('tr', { 'data-action': e.action }, el('td', { text: time(e.tMs) }), el('td', { text: e.actor }), el('td', { text: e.action }), el('td', { text: e.detail }))),
  );
}

// ---- language ----------------------------------------------------------------------------------

function switchLanguage() {
  setLanguage(language() === 'en' ? 'zh-CN' : 'en');
  applyTranslations();
  renderUsers();
  renderWho();
  renderLink();
  if (state.session) renderTab();
}

// ---- start -------------------------------------------------------------------------------------

/** The server ends a session after `sessionIdleMinutes` without a request; a touch or key press counts as activity. */
let lastActivityPing = 0;
function activity() {
  if (!state.session || Date.now() - lastActivityPing < 30_000) return;
  lastActivityPing = Date.now();
  void api('/api/session');
}

async function main() {
  strip = new EcgStrip($('ecg-canvas'));
  $('login-form').addEventListener('submit', (e) => void login(e));
  $('keypad').addEventListener('click', keypad);
  $('logout').addEventListener('click', () => void logout());
  $('lang').addEventListener('click', switchLanguage);
  $('tabs').addEventListener('click', (e) => {
    const tab = e.target.closest('.tab');
    if (tab) selectTab(tab.dataset.tab);
  });
  $('tabs').addEventListener('keydown', tabKeys);
  $('pcg-record').addEventListener('click', () => void recordPcg());
  $('pcg-last').addEventListener('click', () => void fetchPcg());
  $('pcg-replay').addEventListener('click', replayPcg);
  document.addEventListener('pointerdown', activity);
  document.addEventListener('keydown', activity);
  window.addEventListener('resize', () => {
    strip.reset();
    if (state.session) renderTab();
  });
  const info = await loadUsers();
  setLanguage(savedLanguage(info.language));
  applyTranslations();
  const session = await fetch('/api/session', { credentials: 'same-origin' });
  if (session.ok) startSession(await session.json());
  else showLogin();
}

void main();
