// The web UI: search, live tail, the cluster and administration, over the
// public API with the same tokens. Plain DOM, no framework: the whole UI is
// a few kilobytes served from the binary.

import { api, get, query, setToken, tail, token } from './api.js';

// h makes an element: h('div.cls#id', {attr: v, onclick: f}, ...children).
export function h(spec, attrs, ...children) {
  const [, tag, rest] = spec.match(/^([a-z0-9]+)(.*)$/);
  const el = document.createElement(tag);
  for (const m of rest.matchAll(/([.#])([\w-]+)/g)) m[1] === '.' ? el.classList.add(m[2]) : (el.id = m[2]);
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false && v != null) el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const app = () => document.getElementById('app');

// The route: #/page?params.
function route() {
  const [page, qs] = location.hash.replace(/^#\/?/, '').split('?');
  return { page: page || 'search', params: Object.fromEntries(new URLSearchParams(qs || '')) };
}

export function go(page, params) {
  const q = query(params || {});
  location.hash = '#/' + page + (q ? '?' + q : '');
}

let cleanup = () => {};

async function render() {
  cleanup();
  cleanup = () => {};
  const { page, params } = route();
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.page === page);
  document.getElementById('top').hidden = page === 'login';
  if (!token() && page !== 'login') return go('login', { next: location.hash });
  const pages = { login: loginPage, search: searchPage, tail: tailPage, cluster: clusterPage, admin: adminPage };
  const root = app();
  root.replaceChildren(h('p.muted', 'Loading…'));
  try {
    const view = await (pages[page] || searchPage)(params);
    if (view) root.replaceChildren(view);
  } catch (e) {
    root.replaceChildren(errorBox(e));
  }
}

function errorBox(e) {
  return h('p.error', { role: 'alert' }, e.status ? `${e.status}: ${e.message}` : String(e.message || e));
}

// busy runs fn showing its error in box, if any.
async function busy(box, fn) {
  box.replaceChildren();
  try {
    await fn();
  } catch (e) {
    box.replaceChildren(errorBox(e));
  }
}

// Login.

function loginPage(params) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('div');
  return h('form.login', {
    onsubmit: (ev) => {
      ev.preventDefault();
      busy(msg, async () => {
        const r = await api('POST', '/api/v1/auth/login', { username: user.value, password: pass.value });
        setToken(r.token);
        sessionStorage.setItem('flowg.user', user.value);
        showUser();
        location.hash = params.next && params.next !== '#/login' ? params.next : '#/search';
      });
    },
  }, h('h1', 'flowg-server'), h('label', 'User', user), h('label', 'Password', pass), h('button', { type: 'submit' }, 'Log in'), msg);
}

// Search.

// The sidebar tallies the newest records of the window, at most this many:
// quick on any stream, and what a reader looks at first.
const SIDEBAR_SAMPLE = 10000;

const PRESETS = [['-15m', 'Last 15 minutes'], ['-1h', 'Last hour'], ['-6h', 'Last 6 hours'], ['-24h', 'Last 24 hours'], ['-7d', 'Last 7 days'], ['all', 'All time']];

// The filter text with the column of a syntax error marked.
function filterError(filter, e) {
  const m = /column (\d+)/.exec(e.message);
  if (!m || !/syntax error/.test(e.message)) return errorBox(e);
  const col = Number(m[1]) - 1;
  return h('div.error.syntax', { role: 'alert' },
    h('code', filter.slice(0, col), h('mark', filter.slice(col, col + 1) || ' '), filter.slice(col + 1)),
    h('div', e.message));
}

async function streamPicker(current, onchange) {
  const { streams } = await get('/api/v1/streams');
  const names = (streams || []).map((s) => s.name);
  const sel = h('select', { 'aria-label': 'Stream', onchange: () => onchange(sel.value) },
    names.length ? names.map((n) => h('option', { value: n, selected: n === current }, n)) : h('option', { value: '' }, 'no stream yet'));
  return { sel, names, streams: streams || [] };
}

async function searchPage(p) {
  p = { ...p, from: p.from || '-1h' }; // the last hour unless told: quick on any stream
  const picker = await streamPicker(p.stream, (s) => go('search', { ...p, stream: s, cursor: '' }));
  const stream = p.stream || picker.names[0];
  if (!stream) return h('section', h('h2', 'Search'), h('p', 'No stream holds records yet. Send some to POST /api/v1/streams/{stream}/logs/struct.'));
  const filterIn = h('input.filter', { value: p.filter || '', placeholder: 'level = "error" and message has i"timeout"', 'aria-label': 'Filter', spellcheck: 'false' });
  const preset = h('select', { 'aria-label': 'Time range' }, PRESETS.map(([v, l]) => h('option', { value: v, selected: p.from === v && !p.to }, l)),
    (p.to || (p.from && !PRESETS.some(([v]) => v === p.from))) ? h('option', { value: 'custom', selected: true }, 'Custom range') : null);
  const apply = (extra) => go('search', { stream, filter: filterIn.value.trim(), from: preset.value === 'custom' ? p.from : preset.value, to: preset.value === 'custom' ? p.to : '', columns: p.columns, ...extra });
  preset.onchange = () => apply({});
  const bar = h('form.bar', { onsubmit: (ev) => { ev.preventDefault(); apply({}); } },
    picker.sel, filterIn, preset, h('button', { type: 'submit' }, 'Search'),
    h('a.button', { href: '#/tail?' + query({ stream, filter: p.filter }) }, 'Live tail'));
  const msg = h('div');
  const histo = h('div.histogram');
  const side = h('aside.fields');
  const table = h('div.results');
  const detail = h('div.detail');
  const view = h('section.search', bar, msg, histo, h('div.split', side, h('div.main', table, detail)));
  const range = { from: p.from === 'all' ? '' : p.from, to: p.to, filter: p.filter };
  const columns = (p.columns || '').split(',').filter(Boolean);
  const toggleColumn = (name) => {
    const next = columns.includes(name) ? columns.filter((c) => c !== name) : [...columns, name];
    go('search', { ...p, stream, columns: next.join(',') });
  };
  const addTerm = (name, value) => {
    const term = `${/^[\w.@-]+$/.test(name) ? name : '`' + name + '`'} = ${JSON.stringify(value)}`;
    go('search', { ...p, stream, cursor: '', filter: p.filter ? `(${p.filter}) and ${term}` : term });
  };

  // The histogram, answered by /stats with an automatic step; drag to zoom.
  let from = range.from;
  if (!from) {
    const usage = picker.streams.find((s) => s.name === stream)?.usage;
    from = usage?.oldest || '-1h';
  }
  const histogram = get(`/api/v1/streams/${stream}/stats`, { ...range, from, step: 'auto' }).then((a) => drawHistogram(histo, a, (lo, hi) =>
    go('search', { ...p, stream, cursor: '', from: lo.toISOString(), to: hi.toISOString() })));
  const fields = get(`/api/v1/streams/${stream}/fields`, { ...range, top: 5, limit: SIDEBAR_SAMPLE }).then((f) => drawFields(side, f, columns, toggleColumn, addTerm));
  const page = get(`/api/v1/streams/${stream}/logs`, { ...range, limit: 100, cursor: p.cursor }).then((pg) => {
    const cols = columns.length ? columns : defaultColumns(pg.records);
    table.replaceChildren(recordsTable(pg.records, cols, (r) => detail.replaceChildren(recordDetail(r, addTerm))),
      h('div.pager',
        p.cursor ? h('button', { onclick: () => history.back() }, '← Newer') : null,
        pg.next_cursor ? h('button', { onclick: () => go('search', { ...p, stream, cursor: pg.next_cursor }) }, 'Older →') : h('span.muted', 'end of results')),
      behindNotice(pg.behind));
  });
  Promise.all([histogram, fields, page]).catch((e) => msg.replaceChildren(e.status === 400 && /filter/.test(e.message) ? filterError(p.filter || '', e) : errorBox(e)));
  const keys = (ev) => { if (ev.key === '/' && document.activeElement.tagName !== 'INPUT') { ev.preventDefault(); filterIn.focus(); } };
  document.addEventListener('keydown', keys);
  cleanup = () => document.removeEventListener('keydown', keys);
  return view;
}

function behindNotice(behind) {
  if (!behind || !behind.length) return null;
  return h('p.notice', 'This node does not hold every record yet: ', behind.map((b) => `${b.node_id} (${b.records} records, ${b.seconds.toFixed(1)} s behind)`).join(', '));
}

function defaultColumns(records) {
  const seen = new Set();
  for (const r of records.slice(0, 50)) for (const k of Object.keys(r.fields)) seen.add(k);
  const pick = ['level', 'service', 'host', 'message', 'msg'].filter((k) => seen.has(k));
  return pick.length ? pick : [...seen].slice(0, 4);
}

function recordsTable(records, cols, onopen) {
  if (!records.length) return h('p.muted', 'No record matches.');
  return h('table.records',
    h('thead', h('tr', h('th', 'time'), cols.map((c) => h('th', c)))),
    h('tbody', records.map((r) => h('tr', { tabindex: 0, onclick: () => onopen(r), onkeydown: (ev) => ev.key === 'Enter' && onopen(r) },
      h('td.time', r.timestamp.replace('T', ' ').replace('Z', '')), cols.map((c) => h('td', { class: c === 'level' ? 'level-' + r.fields[c] : null }, r.fields[c] ?? ''))))));
}

function recordDetail(r, addTerm) {
  return h('div',
    h('h3', r.timestamp, h('button.close', { onclick: (ev) => ev.target.closest('.detail').replaceChildren(), 'aria-label': 'Close' }, '×')),
    h('table.kv', Object.entries(r.fields).sort().map(([k, v]) => h('tr',
      h('th', k), h('td', h('code', v)), h('td', h('button.small', { onclick: () => addTerm(k, v), title: 'Add to the filter' }, '+'))))));
}

function drawFields(side, f, columns, toggleColumn, addTerm) {
  side.replaceChildren(h('h3', f.limited ? `Fields of the newest ${f.records}` : `${f.records} records`),
    ...f.fields.map((fl) => h('details', { open: columns.includes(fl.name) },
      h('summary', h('label', h('input', { type: 'checkbox', checked: columns.includes(fl.name), onchange: () => toggleColumn(fl.name), 'aria-label': 'Show ' + fl.name }), ' ', fl.name),
        h('span.muted', ` ${fl.distinct}${fl.distinct_at_least ? '+' : ''}`)),
      h('ul', fl.top.map((v) => h('li', h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); addTerm(fl.name, v.value); } }, v.value || '""'), h('span.muted', ' ' + v.count)))))));
}

// drawHistogram draws the counts per bucket as SVG bars; dragging across
// it calls zoom with the times under the drag.
function drawHistogram(box, a, zoom) {
  const rows = a.rows || [];
  if (!rows.length) return box.replaceChildren(h('p.muted', 'No record in this window.'));
  const step = parseStep(a.step);
  const t0 = Date.parse(rows[0].time), t1 = Date.parse(rows[rows.length - 1].time) + step;
  const max = Math.max(...rows.map((r) => r.values['count()']));
  const W = 1000, H = 80;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${a.records} records, ${rows.length} buckets of ${a.step}`);
  const x = (t) => ((t - t0) / (t1 - t0)) * W;
  for (const r of rows) {
    const t = Date.parse(r.time), n = r.values['count()'];
    const rect = document.createElementNS(ns, 'rect');
    rect.setAttribute('x', x(t));
    rect.setAttribute('width', Math.max(1, x(t + step) - x(t) - 0.5));
    rect.setAttribute('y', H - (n / max) * H);
    rect.setAttribute('height', (n / max) * H);
    const title = document.createElementNS(ns, 'title');
    title.textContent = `${r.time}: ${n}`;
    rect.append(title);
    svg.append(rect);
  }
  const sel = document.createElementNS(ns, 'rect');
  sel.setAttribute('class', 'selection');
  sel.setAttribute('y', 0);
  sel.setAttribute('height', H);
  svg.append(sel);
  const timeAt = (ev) => {
    const b = svg.getBoundingClientRect();
    return t0 + ((ev.clientX - b.left) / b.width) * (t1 - t0);
  };
  let start = null;
  svg.addEventListener('mousedown', (ev) => { start = timeAt(ev); sel.setAttribute('width', 0); });
  svg.addEventListener('mousemove', (ev) => {
    if (start === null) return;
    const now = timeAt(ev);
    sel.setAttribute('x', x(Math.min(start, now)));
    sel.setAttribute('width', Math.abs(x(now) - x(start)));
  });
  svg.addEventListener('mouseup', (ev) => {
    const end = timeAt(ev);
    const [lo, hi] = [Math.min(start, end), Math.max(start, end)];
    start = null;
    if (hi - lo > step / 10) zoom(new Date(lo), new Date(hi));
  });
  box.replaceChildren(svg, h('div.axis', h('span', new Date(t0).toISOString()), h('span', `${a.records} records, ${a.step} buckets`), h('span', new Date(t1).toISOString())));
}

function parseStep(s) {
  const m = /^(\d+)(ms|s|m|h|d|w)$/.exec(s || '');
  return m ? Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 }[m[2]] : 6e4;
}

// Live tail.

async function tailPage(p) {
  const picker = await streamPicker(p.stream, (s) => go('tail', { ...p, stream: s }));
  const stream = p.stream || picker.names[0] || '';
  const streamIn = h('input', { value: stream, 'aria-label': 'Stream', list: 'streams' });
  const filterIn = h('input.filter', { value: p.filter || '', placeholder: 'filter', 'aria-label': 'Filter', spellcheck: 'false' });
  const status = h('span.status', 'connecting…');
  const notice = h('div');
  const body = h('tbody');
  let paused = false, held = [], count = 0;
  const pause = h('button', { type: 'button', onclick: () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) { held.forEach(show); held = []; }
    status.textContent = paused ? 'paused' : 'live';
  } }, 'Pause');
  const show = (r) => {
    body.prepend(h('tr', h('td.time', r.timestamp.replace('T', ' ').replace('Z', '')), h('td', h('code', JSON.stringify(r.fields)))));
    while (body.children.length > 1000) body.lastChild.remove();
  };
  const ctl = new AbortController();
  cleanup = () => ctl.abort();
  const view = h('section.tail',
    h('form.bar', { onsubmit: (ev) => { ev.preventDefault(); go('tail', { stream: streamIn.value.trim(), filter: filterIn.value.trim() }); } },
      streamIn, h('datalist#streams', picker.names.map((n) => h('option', { value: n }))), filterIn, h('button', { type: 'submit' }, 'Tail'), pause, status),
    notice, h('table.records.tail', h('thead', h('tr', h('th', 'time'), h('th', 'fields'))), body));
  if (!stream) {
    status.textContent = 'name a stream';
    return view;
  }
  tail(stream, p.filter, (name, data) => {
    if (name === 'record') {
      count++;
      status.textContent = `live: ${count} records`;
      paused ? held.push(data) : show(data);
    } else if (name === 'lagged') {
      notice.replaceChildren(h('p.notice', { role: 'alert' }, 'The server ended this tail: it fell behind (', data.error, '). Records in between were dropped; ',
        h('a', { href: '#/search?' + query({ stream, filter: p.filter, from: '-15m' }) }, 'search them'), ' and ', h('a', { href: location.hash, onclick: () => setTimeout(render) }, 'reconnect'), '.'));
    }
  }, ctl.signal).then(() => { status.textContent = 'ended'; }, (e) => { if (e.name !== 'AbortError') { status.textContent = 'ended'; notice.replaceChildren(errorBox(e)); } });
  status.textContent = 'live';
  return view;
}

// Cluster.

async function clusterPage() {
  const box = h('div');
  const view = h('section.cluster', h('h2', 'Cluster'), h('p.muted', 'As this node sees it; refreshed every 2 seconds.'), box);
  const load = async () => {
    try {
      const { nodes, self } = await get('/api/v1/cluster/nodes');
      const failed = nodes.filter((n) => n.status !== 'alive');
      box.replaceChildren(
        h('dl.self', h('dt', 'This node'), h('dd', self.node_id || '', ' ', h('span', { class: self.status === 'ready' ? 'ok' : 'error' }, self.status)),
          h('dt', 'Finds peers by'), h('dd', self.discovery.length ? self.discovery.join('; ') : 'none: a cluster of its own until a peer joins it'),
          self.problems?.length ? [h('dt', 'Problems'), h('dd.error', self.problems.join('; '))] : null,
          h('dt', 'Replication'), h('dd', self.behind?.length ? self.behind.map((b) => `behind ${b.node_id} by ${b.records} records (${b.seconds.toFixed(1)} s)`).join('; ') : 'holds every record the other nodes have announced')),
        failed.length ? h('p.notice', `${failed.length} of ${nodes.length} nodes are not alive: `, failed.map((n) => `${n.node_id} (${n.status})`).join(', ')) : h('p.ok', `${nodes.length} nodes, all alive`),
        h('table.nodes', h('thead', h('tr', ['node', 'status', 'endpoint', 'API', 'syslog', 'replication lag', 'tags'].map((c) => h('th', c)))),
          h('tbody', nodes.map((n) => h('tr', { 'data-node': n.node_id },
            h('td', n.node_id), h('td', h('span', { class: 'status-' + n.status }, n.status)), h('td', n.endpoint), h('td', n.http_addr || ''), h('td', n.syslog_addr || ''),
            h('td', n.replication ? `${n.replication.lag_records} records, ${n.replication.lag_seconds.toFixed(1)} s` : '—'),
            h('td', Object.entries(n.tags || {}).sort().map(([k, v]) => h('span.tag', `${k}=${v}`))))))));
    } catch (e) {
      box.replaceChildren(errorBox(e));
    }
  };
  await load();
  const timer = setInterval(load, 2000);
  cleanup = () => clearInterval(timer);
  return view;
}

// Administration: streams, users, roles, tokens.

const SCOPES = ['read_streams', 'write_streams', 'send_logs', 'read_acls', 'write_acls'];

async function adminPage(p) {
  const tab = p.tab || 'streams';
  const tabs = h('nav.tabs', ['streams', 'users', 'roles', 'tokens'].map((t) => h('a', { href: '#/admin?tab=' + t, class: t === tab ? 'active' : null }, t)));
  const msg = h('div');
  const body = await { streams: adminStreams, users: adminUsers, roles: adminRoles, tokens: adminTokens }[tab](msg);
  return h('section.admin', tabs, msg, body);
}

const reload = () => render();

function formOf(fields, submit, label, msg) {
  return h('form.inline', { onsubmit: (ev) => { ev.preventDefault(); busy(msg, async () => { await submit(); reload(); }); } }, fields, h('button', { type: 'submit' }, label));
}

async function adminStreams(msg) {
  const { streams } = await get('/api/v1/streams');
  return h('div', h('table', h('thead', h('tr', ['stream', 'records', 'bytes', 'oldest', 'retention (s)', 'retention (bytes)', 'indexed fields', ''].map((c) => h('th', c)))),
    h('tbody', (streams || []).map((s) => {
      const secs = h('input', { type: 'number', min: 0, value: s.retention_seconds || 0, 'aria-label': 'retention seconds of ' + s.name });
      const bytes = h('input', { type: 'number', min: 0, value: s.retention_bytes || 0, 'aria-label': 'retention bytes of ' + s.name });
      const idx = h('input', { value: (s.indexed_fields || []).join(', '), 'aria-label': 'indexed fields of ' + s.name });
      const save = () => busy(msg, async () => {
        await api('PUT', '/api/v1/streams/' + s.name, { retention_seconds: Number(secs.value), retention_bytes: Number(bytes.value), indexed_fields: idx.value.split(',').map((x) => x.trim()).filter(Boolean) });
        reload();
      });
      const purge = () => {
        if (prompt(`Purge deletes every record of ${s.name} on every node. Type the stream's name to confirm.`) !== s.name) return;
        busy(msg, async () => { await api('DELETE', '/api/v1/streams/' + s.name); reload(); });
      };
      return h('tr', h('td', h('a', { href: '#/search?stream=' + s.name }, s.name)), h('td', s.usage.records), h('td', s.usage.bytes), h('td', s.usage.oldest || ''),
        h('td', secs), h('td', bytes), h('td', idx), h('td', h('button', { onclick: save }, 'Save'), ' ', h('button.danger', { onclick: purge }, 'Purge')));
    }))));
}

async function adminUsers(msg) {
  const [{ users }, { roles }] = await Promise.all([get('/api/v1/users'), get('/api/v1/roles')]);
  const name = h('input', { placeholder: 'user', 'aria-label': 'user name', required: true });
  const pass = h('input', { type: 'password', placeholder: 'password (empty keeps it)', 'aria-label': 'password', autocomplete: 'new-password' });
  const roleBoxes = (roles || []).map((r) => h('label.check', h('input', { type: 'checkbox', value: r.name }), r.name));
  return h('div',
    h('table', h('thead', h('tr', h('th', 'user'), h('th', 'roles'), h('th', ''))),
      h('tbody', (users || []).map((u) => h('tr', h('td', u.name), h('td', (u.roles || []).join(', ')),
        h('td', h('button.danger', { onclick: () => confirm(`Delete user ${u.name}?`) && busy(msg, async () => { await api('DELETE', '/api/v1/users/' + u.name); reload(); }) }, 'Delete')))))),
    h('h3', 'Create or update a user'),
    formOf([name, pass, roleBoxes], () => api('PUT', '/api/v1/users/' + encodeURIComponent(name.value), { password: pass.value, roles: roleBoxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value) }), 'Save user', msg));
}

async function adminRoles(msg) {
  const { roles } = await get('/api/v1/roles');
  const name = h('input', { placeholder: 'role', 'aria-label': 'role name', required: true });
  const boxes = SCOPES.map((s) => h('label.check', h('input', { type: 'checkbox', value: s }), s));
  return h('div',
    h('table', h('thead', h('tr', h('th', 'role'), h('th', 'scopes'), h('th', ''))),
      h('tbody', (roles || []).map((r) => h('tr', h('td', r.name), h('td', (r.scopes || []).join(', ')),
        h('td', r.name === 'admin' ? h('span.muted', 'built in') : h('button.danger', { onclick: () => confirm(`Delete role ${r.name}?`) && busy(msg, async () => { await api('DELETE', '/api/v1/roles/' + r.name); reload(); }) }, 'Delete')))))),
    h('h3', 'Create or update a role'),
    formOf([name, boxes], () => api('PUT', '/api/v1/roles/' + encodeURIComponent(name.value), { scopes: boxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value) }), 'Save role', msg));
}

async function adminTokens(msg) {
  const { tokens } = await get('/api/v1/tokens');
  const name = h('input', { placeholder: 'token name', 'aria-label': 'token name', required: true });
  const shown = h('div');
  const create = h('form.inline', { onsubmit: (ev) => {
    ev.preventDefault();
    busy(msg, async () => {
      const t = await api('POST', '/api/v1/tokens', { name: name.value });
      shown.replaceChildren(h('p.notice', 'Copy the token now; it is not shown again: ', h('code#new-token', t.token)));
    });
  } }, name, h('button', { type: 'submit' }, 'Create token'));
  return h('div',
    h('table', h('thead', h('tr', ['name', 'id', 'kind', 'created', ''].map((c) => h('th', c)))),
      h('tbody', (tokens || []).map((t) => h('tr', h('td', t.name), h('td', h('code', t.id)), h('td', t.kind), h('td', t.created),
        h('td', h('button.danger', { onclick: () => busy(msg, async () => { await api('DELETE', '/api/v1/tokens/' + t.id); reload(); }) }, 'Revoke')))))),
    h('h3', 'New personal access token'), create, shown);
}

window.addEventListener('hashchange', render);
function showUser() {
  document.getElementById('whoami').replaceChildren(h('span', sessionStorage.getItem('flowg.user') || ''), ' ',
    h('button.small', { onclick: () => { setToken(''); go('login'); } }, 'Log out'));
}

window.addEventListener('DOMContentLoaded', () => {
  showUser();
  render();
});
