#!/usr/bin/env node
// Runs the 10,000-device pace simulation (src/rounds/pace-sim.ts, the run that
// src/rounds/pace-population.test.ts asserts) with the rate cap and without it, writes
// docs/pace-steering.svg (check-ins per second over the hour) and prints the figures that
// docs/pace-steering.md quotes. Reads dist/: `npm run build && node scripts/pace-plot.js`.
// A hand-written SVG: two line charts need no plotting library, and the file stays diffable.
const fs = require('node:fs');
const path = require('node:path');
const { simulatePace, seededRandom, TEN_THOUSAND_DEVICES } = require('../dist/src/rounds/pace-sim.js');
const { roundFigures } = require('../dist/src/rounds/pace-figures.js');

const out = path.join(__dirname, '..', 'docs', 'pace-steering.svg');
const W = 960;
const PANEL_H = 300;
const M = { left: 64, right: 24, top: 40, bottom: 44 };

async function main() {
  const o = TEN_THOUSAND_DEVICES;
  const capped = await simulatePace({ ...o, random: seededRandom(1) });
  const uncapped = await simulatePace({ ...o, rateCap: 0, random: seededRandom(1) });
  const panels = [
    panel(capped, `CHECKIN_RATE_CAP=${o.rateCap}: 10,000 devices, rounds of 130 selected`, o.rateCap),
    panel(uncapped, 'no cap (the retry windows before the cap): the same population', undefined),
  ];
  const height = panels.length * PANEL_H;
  const body = panels.map((p, i) => `<g transform="translate(0,${i * PANEL_H})">${p}</g>`).join('\n');
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" ` +
    `font-family="sans-serif" font-size="12">\n<rect width="${W}" height="${height}" fill="white"/>\n${body}\n</svg>\n`;
  fs.writeFileSync(out, svg);
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
  report('with the cap', capped, o);
  report('without a cap', uncapped, o);
}

/** One chart: check-ins in each second (thin), their 60 s moving mean (thick), the cap, round openings. */
function panel(sim, title, cap) {
  const ps = sim.perSecond;
  const n = ps.length;
  const peak = Math.max(...ps);
  const yMax = niceCeil(Math.max(peak, cap ? cap * 1.15 : 0));
  const plotW = W - M.left - M.right;
  const plotH = PANEL_H - M.top - M.bottom;
  const x = (s) => M.left + (s / n) * plotW;
  const y = (v) => M.top + plotH - (v / yMax) * plotH;
  const parts = [];
  parts.push(`<text x="${M.left}" y="${M.top - 14}" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let v = 0; v <= yMax; v += yMax / 5) {
    parts.push(
      `<line x1="${M.left}" x2="${M.left + plotW}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#e5e5e5"/>`,
    );
    parts.push(`<text x="${M.left - 8}" y="${f(y(v) + 4)}" text-anchor="end">${Math.round(v)}</text>`);
  }
  for (let m = 0; m * 60 <= n; m += 10) {
    parts.push(`<text x="${f(x(m * 60))}" y="${M.top + plotH + 18}" text-anchor="middle">${m}</text>`);
  }
  parts.push(
    `<text x="${M.left + plotW / 2}" y="${PANEL_H - 8}" text-anchor="middle">minutes of virtual time</text>`,
    `<text transform="translate(16,${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">check-ins per second</text>`,
  );
  for (const r of sim.rounds) {
    const at = f(x(r.openedAt / 1000));
    parts.push(
      `<line x1="${at}" x2="${at}" y1="${M.top + plotH}" y2="${M.top + plotH - 8}" stroke="#d62728"/>`,
    );
  }
  const each = Array.from(ps, (v, s) => `${f(x(s + 0.5))},${f(y(v))}`).join(' ');
  parts.push(`<polyline points="${each}" fill="none" stroke="#9ecae1" stroke-width="0.7"/>`);
  const mean = [];
  let sum = 0;
  for (let s = 0; s < n; s++) {
    sum += ps[s] - (s >= 60 ? ps[s - 60] : 0);
    if (s >= 59) mean.push(`${f(x(s + 0.5))},${f(y(sum / 60))}`);
  }
  parts.push(`<polyline points="${mean.join(' ')}" fill="none" stroke="#08519c" stroke-width="2"/>`);
  if (cap) {
    parts.push(
      `<line x1="${M.left}" x2="${M.left + plotW}" y1="${f(y(cap))}" y2="${f(y(cap))}" stroke="#d62728" stroke-dasharray="6 4"/>`,
      `<text x="${M.left + plotW - 4}" y="${f(y(cap) - 6)}" text-anchor="end" fill="#d62728">cap ${cap}/s</text>`,
    );
  }
  const lx = M.left + 8;
  const ly = M.top + 10;
  parts.push(
    `<line x1="${lx}" x2="${lx + 20}" y1="${ly}" y2="${ly}" stroke="#9ecae1" stroke-width="2"/>`,
    `<text x="${lx + 26}" y="${ly + 4}">each second</text>`,
    `<line x1="${lx + 120}" x2="${lx + 140}" y1="${ly}" y2="${ly}" stroke="#08519c" stroke-width="2"/>`,
    `<text x="${lx + 146}" y="${ly + 4}">60 s mean</text>`,
    `<line x1="${lx + 232}" x2="${lx + 232}" y1="${ly - 6}" y2="${ly + 6}" stroke="#d62728"/>`,
    `<text x="${lx + 238}" y="${ly + 4}">a round opens (peak ${peak}/s)</text>`,
    `<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
  );
  return parts.join('\n');
}

function report(label, sim, o) {
  const rounds = roundFigures(sim, o).filter((r) => !Number.isNaN(r.peakToMean));
  const after = rounds.filter((r) => r.openedS >= o.firstCheckinS);
  const mean = sim.checkins / sim.perSecond.length;
  const max = (xs) => Math.max(...xs);
  console.log(
    `${label}: ${sim.checkins} check-ins, mean ${mean.toFixed(1)}/s, peak second ${max(sim.perSecond)}/s; ` +
      `${sim.rounds.length} rounds opened, ${sim.rounds.filter((r) => r.outcome === 'failed').length} failed; ` +
      `fill time max ${max(rounds.map((r) => r.fillS)).toFixed(1)} s; ` +
      `peak/mean after opening: first round ${rounds[0].peakToMean.toFixed(2)}, ` +
      `rounds opened after ${o.firstCheckinS} s max ${max(after.map((r) => r.peakToMean)).toFixed(2)}`,
  );
}

/** 1, 2 or 5 times a power of ten, at least `v`. */
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const f = (v) => (Math.round(v * 10) / 10).toString();
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
