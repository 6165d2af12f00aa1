/**
 * The operator dashboard (`/dashboard/`): every plan with its status and progress, and for the chosen plan
 * its rounds and uPlot plots of its outputs, participation and round durations; every stateful program, and
 * for the chosen one where it stands and its outputs; refreshed by polling the operator API. Bundled by scripts/build-web.js into dist/web/dashboard.js (an IIFE; uPlot inside).
 *
 * The operator token is asked once and kept in this tab's sessionStorage: it goes out only as an
 * `Authorization: Bearer` header on this page's own fetches, never in a cookie, so no other site's page can
 * make the browser send it. The operator endpoints answer no cross-origin request (client-cors.ts).
 */
import uPlot from 'uplot';
import {
  ACTIONS,
  PROGRAM_ACTIONS,
  durationMs,
  plotsOf,
  programLine,
  progress,
  type Plot,
  type PlanView,
  type ProgramView,
  type RoundView,
} from './dashboard-data';

/** The sessionStorage key of the token: per tab, gone when the tab closes. */
const TOKEN_KEY = 'roundhouse.operatorToken';
/** Between two refreshes while the tab is visible. */
const POLL_MS = 1500;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

/** A refused request, with the API's error code and message (src/errors.ts shape). */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`dashboard.html has no #${id}`);
  return el as T;
};

let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
let timer: ReturnType<typeof setTimeout> | undefined;
/** Bumped on every refresh and logout, so that an answer to an older request is dropped. */
let generation = 0;
const charts = new Map<string, { chart: uPlot; labels: string; box: HTMLElement }>();
let chartsOf = '';
/** Shown instead of the time of the last refresh until another plan is chosen. */
let notice = '';

async function api<T>(path: string, init: RequestInit = {}, bearer = token): Promise<T> {
  const res = await fetch(path, {
    ...init,
    cache: 'no-store',
    credentials: 'omit',
    headers: { authorization: `Bearer ${bearer}`, ...init.headers },
  });
  const body = (await res.json().catch(() => undefined)) as
    { error?: { code?: string; message?: string } } | undefined;
  if (!res.ok) {
    throw new ApiError(
      res.status,
      body?.error?.code ?? 'HTTP_ERROR',
      body?.error?.message ?? `${path} answered ${res.status}`,
    );
  }
  return body as T;
}

function describe(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.status} ${e.code})`;
  return e instanceof Error ? e.message : String(e);
}

function showLogin(message = ''): void {
  clearTimeout(timer);
  generation++;
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  document.body.dataset.state = 'login';
  $('login-view').hidden = false;
  $('main-view').hidden = true;
  $('logout').hidden = true;
  $('login-error').textContent = message;
  $<HTMLInputElement>('token').focus();
}

function showMain(): void {
  document.body.dataset.state = 'ready';
  $('login-view').hidden = true;
  $('main-view').hidden = false;
  $('logout').hidden = false;
  $('login-error').textContent = '';
  void refresh();
}

async function login(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const given = $<HTMLInputElement>('token').value.trim();
  const button = $<HTMLButtonElement>('sign-in');
  button.disabled = true;
  try {
    // Checked against the API before it is kept, so that a typo is said at once.
    await api('/v1/plans', {}, given);
    token = given;
    sessionStorage.setItem(TOKEN_KEY, token);
    $<HTMLInputElement>('token').value = '';
    showMain();
  } catch (e) {
    const unauthorized = e instanceof ApiError && e.status === 401;
    $('login-error').textContent = unauthorized
      ? `The server refused this token: ${describe(e)}. Use the server's OPERATOR_TOKEN.`
      : `Could not reach the API: ${describe(e)}`;
  } finally {
    button.disabled = false;
  }
}

function selectedPlan(): string | undefined {
  const m = /^#plan=([a-z0-9]+)$/.exec(location.hash);
  return m?.[1];
}

function selectedProgram(): string | undefined {
  const m = /^#program=([a-z0-9]+)$/.exec(location.hash);
  return m?.[1];
}

/** Reads everything shown and draws it; schedules the next read unless the tab is hidden. */
async function refresh(): Promise<void> {
  clearTimeout(timer);
  const mine = ++generation;
  try {
    const id = selectedPlan();
    const programId = selectedProgram();
    const [list, detail, programList, program] = await Promise.all([
      api<{ plans: PlanView[] }>('/v1/plans'),
      id
        ? Promise.all([
            api<PlanView>(`/v1/plans/${id}`),
            api<{ rounds: RoundView[] }>(`/v1/plans/${id}/rounds`),
          ])
        : undefined,
      api<{ programs: ProgramView[] }>('/v1/programs'),
      programId ? api<ProgramView>(`/v1/programs/${programId}`) : undefined,
    ]);
    if (mine !== generation) return;
    renderPlans(list.plans, id);
    renderPlan(detail && { plan: detail[0], rounds: detail[1].rounds });
    renderPrograms(programList.programs, programId);
    renderProgram(program);
    $('status-line').textContent = notice || `Updated ${new Date().toLocaleTimeString()}`;
    $('status-line').classList.toggle('error', notice !== '');
  } catch (e) {
    if (mine !== generation) return;
    if (e instanceof ApiError && e.status === 401)
      return showLogin(`The token stopped working: ${describe(e)}`);
    if (e instanceof ApiError && (e.code === 'PLAN_NOT_FOUND' || e.code === 'PROGRAM_NOT_FOUND')) {
      // Deleted since it was chosen, or a stale link: back to the plan list rather than failing each poll.
      notice = `${describe(e)}: it was deleted, or the link is stale`;
      history.replaceState(null, '', location.pathname);
      return void refresh();
    }
    $('status-line').textContent = `Refresh failed, retrying: ${describe(e)}`;
    $('status-line').classList.add('error');
  }
  if (mine === generation && !document.hidden) timer = setTimeout(() => void refresh(), POLL_MS);
}

function cell(row: HTMLTableRowElement, text: string | number, className = ''): HTMLTableCellElement {
  const td = row.insertCell();
  td.textContent = String(text);
  if (className) td.className = className;
  return td;
}

function renderPlans(plans: readonly PlanView[], selected: string | undefined): void {
  const body = $<HTMLTableElement>('plans').tBodies[0]!;
  body.replaceChildren();
  const sorted = [...plans].sort((a, b) => b.created_at - a.created_at);
  for (const p of sorted) {
    const row = body.insertRow();
    row.dataset.plan = p.id;
    if (p.id === selected) row.classList.add('selected');
    const link = document.createElement('a');
    link.href = `#plan=${p.id}`;
    link.textContent = p.id;
    row.insertCell().append(link);
    cell(row, p.name);
    cell(row, p.population);
    cell(row, p.status, `status ${p.status}`);
    const { done, total } = progress(p);
    const bar = document.createElement('progress');
    bar.max = total;
    bar.value = done;
    const td = cell(row, ` ${done} / ${total}`, 'progress');
    td.prepend(bar);
  }
  $('no-plans').hidden = plans.length > 0;
}

function renderPrograms(programs: readonly ProgramView[], selected: string | undefined): void {
  const body = $<HTMLTableElement>('programs').tBodies[0]!;
  body.replaceChildren();
  for (const p of [...programs].sort((a, b) => b.created_at - a.created_at)) {
    const row = body.insertRow();
    row.dataset.program = p.id;
    row.dataset.status = p.status;
    if (p.id === selected) row.classList.add('selected');
    const link = document.createElement('a');
    link.href = `#program=${p.id}`;
    link.textContent = p.id;
    row.insertCell().append(link);
    cell(row, p.name);
    cell(row, p.population);
    cell(row, p.status, `status ${p.status}`);
    cell(row, `${Math.min(p.step, p.steps)} / ${p.steps}`, 'num');
    cell(row, `${p.live} / ${p.status === 'recruiting' ? p.target_clients : p.cohort}`, 'num');
  }
  $('no-programs').hidden = programs.length > 0;
}

function renderProgram(p: ProgramView | undefined): void {
  const view = $('program-view');
  if (!p) {
    view.hidden = true;
    return;
  }
  view.hidden = false;
  view.dataset.program = p.id;
  view.dataset.status = p.status;
  $('program-title').textContent = `${p.name} (${p.id})`;
  $('program-summary').textContent = programLine(p);
  for (const [action, from] of Object.entries(PROGRAM_ACTIONS)) {
    $<HTMLButtonElement>(`program-${action}`).disabled = !(from as readonly string[]).includes(p.status);
  }
  $('program-outputs').textContent =
    p.outputs === undefined ? 'none yet' : JSON.stringify(p.outputs, null, 2);
}

function renderPlan(detail: { plan: PlanView; rounds: RoundView[] } | undefined): void {
  const view = $('plan-view');
  if (!detail) {
    view.hidden = true;
    delete document.body.dataset.planStatus;
    return dropCharts();
  }
  const { plan, rounds } = detail;
  view.hidden = false;
  view.dataset.plan = plan.id;
  document.body.dataset.planStatus = plan.status;
  $('plan-title').textContent = `${plan.name} (${plan.id})`;
  const { done, total } = progress(plan);
  const why = plan.error ?? plan.reason;
  $('plan-summary').textContent =
    `${plan.status}: ${done} of ${total} rounds done; population ${plan.population}` +
    (plan.status === 'active' ? `; round ${plan.round} attempt ${plan.attempt} ${plan.phase ?? ''}` : '') +
    (why ? `. ${why}` : '');
  for (const [action, from] of Object.entries(ACTIONS)) {
    $<HTMLButtonElement>(action).disabled = !(from as readonly string[]).includes(plan.status);
  }
  renderRounds(rounds);
  renderPlots(plan.id, plotsOf(rounds));
}

function renderRounds(rounds: readonly RoundView[]): void {
  const body = $<HTMLTableElement>('rounds').tBodies[0]!;
  body.replaceChildren();
  const now = Date.now();
  for (const r of [...rounds].reverse()) {
    const row = body.insertRow();
    row.dataset.round = String(r.round);
    row.dataset.phase = r.phase;
    cell(row, r.round);
    cell(row, r.attempt);
    cell(row, r.phase, `phase ${r.phase}`);
    for (const n of [r.assigned, r.reported, r.rejected, r.late, r.aggregated_clients]) cell(row, n, 'num');
    const running = r.finished_at === null;
    cell(row, `${(durationMs(r, now) / 1000).toFixed(1)} s${running ? ' so far' : ''}`, 'num');
    cell(row, r.error ?? '');
  }
  $('rounds').dataset.completed = String(rounds.filter((r) => r.phase === 'completed').length);
}

function dropCharts(): void {
  for (const { chart, box } of charts.values()) {
    chart.destroy();
    box.remove();
  }
  charts.clear();
}

function renderPlots(planId: string, plots: readonly Plot[]): void {
  if (chartsOf !== planId) {
    dropCharts();
    chartsOf = planId;
  }
  const container = $('plots');
  const wanted = new Set(plots.map((p) => p.key));
  for (const [key, { chart, box }] of charts) {
    if (!wanted.has(key)) {
      chart.destroy();
      box.remove();
      charts.delete(key);
    }
  }
  for (const plot of plots) {
    const data = [plot.rounds, ...plot.series.map((s) => s.values)] as uPlot.AlignedData;
    const labels = plot.series.map((s) => s.label).join('\n');
    let entry = charts.get(plot.key);
    if (entry && entry.labels !== labels) {
      entry.chart.destroy();
      entry.box.remove();
      entry = undefined;
    }
    if (entry) {
      entry.chart.setData(data);
    } else {
      const box = document.createElement('figure');
      box.className = 'plot';
      box.dataset.plot = plot.key;
      container.append(box);
      entry = { chart: new uPlot(chartOptions(plot), data, box), labels, box };
      charts.set(plot.key, entry);
    }
    // What the chart holds, read back from uPlot, for tests and for anyone inspecting the page.
    entry.box.dataset.points = String(entry.chart.data[0]?.length ?? 0);
  }
  // In plotsOf's order (outputs first), whatever order the charts were first drawn in.
  container.append(...plots.map((p) => charts.get(p.key)!.box));
}

function chartOptions(plot: Plot): uPlot.Options {
  return {
    title: plot.title,
    width: 440,
    height: 220,
    scales: { x: { time: false } },
    axes: [{ label: 'round', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, {}],
    series: [
      { label: 'round' },
      ...plot.series.map((s, i) => ({
        label: s.label,
        stroke: COLORS[i % COLORS.length],
        width: 2,
        points: { show: true, size: 5 },
        spanGaps: true,
      })),
    ],
  };
}

async function act(action: keyof typeof ACTIONS): Promise<void> {
  const id = selectedPlan();
  if (!id) return;
  if (action === 'cancel' && !confirm(`Cancel plan ${id}? A cancelled plan cannot be resumed.`)) return;
  $('action-error').textContent = '';
  try {
    await api(`/v1/plans/${id}/${action}`, { method: 'POST' });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401)
      return showLogin(`The token stopped working: ${describe(e)}`);
    $('action-error').textContent = `Could not ${action} plan ${id}: ${describe(e)}`;
  }
  await refresh();
}

async function actOnProgram(action: keyof typeof PROGRAM_ACTIONS): Promise<void> {
  const id = selectedProgram();
  if (!id) return;
  const question =
    action === 'cancel'
      ? `Cancel program ${id}? Its sessions end and it releases nothing.`
      : `Delete program ${id}, its sessions and its aggregations' plans?`;
  if (!confirm(question)) return;
  $('program-action-error').textContent = '';
  try {
    if (action === 'cancel') await api(`/v1/programs/${id}/cancel`, { method: 'POST' });
    else await api(`/v1/programs/${id}`, { method: 'DELETE' });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401)
      return showLogin(`The token stopped working: ${describe(e)}`);
    $('program-action-error').textContent = `Could not ${action} program ${id}: ${describe(e)}`;
    return void refresh();
  }
  // A deleted program is gone: back to the lists.
  if (action === 'delete') history.replaceState(null, '', location.pathname);
  await refresh();
}

function start(): void {
  $('login').addEventListener('submit', (e) => void login(e as SubmitEvent));
  $('logout').addEventListener('click', () => showLogin());
  for (const action of Object.keys(ACTIONS) as (keyof typeof ACTIONS)[]) {
    $(action).addEventListener('click', () => void act(action));
  }
  for (const action of Object.keys(PROGRAM_ACTIONS) as (keyof typeof PROGRAM_ACTIONS)[]) {
    $(`program-${action}`).addEventListener('click', () => void actOnProgram(action));
  }
  window.addEventListener('hashchange', () => {
    notice = '';
    if (token) void refresh();
  });
  // A hidden tab stops polling (refresh schedules no next read); it reads at once when shown again.
  document.addEventListener('visibilitychange', () => {
    if (token && !document.hidden) void refresh();
  });
  if (token) showMain();
  else showLogin();
}

start();
