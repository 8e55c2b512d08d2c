/**
 * The web dashboard: one static page (HTML + a little JS, no build step, no dependencies) that
 * reads the REST API with a token the operator pastes in. Kept as a string so the esbuild bundle
 * carries it; the page is public, the data behind it is not.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Drover</title>
<style>
  :root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --ok:#067647; --warn:#b54708; --bad:#b42318; --sim:#6941c6; }
  body { font: 14px/1.4 system-ui, sans-serif; color: var(--fg); margin: 0; }
  header { display:flex; gap:1rem; align-items:center; padding:.6rem 1rem; border-bottom:1px solid var(--line); flex-wrap:wrap; }
  header h1 { font-size:1.1rem; margin:0; }
  header input { width: 22rem; font: inherit; padding:.2rem .4rem; }
  nav button { font: inherit; border:1px solid var(--line); background:#fff; padding:.2rem .6rem; cursor:pointer; }
  nav button.on { background: var(--fg); color:#fff; }
  main { padding: 1rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align:left; padding:.25rem .5rem; border-bottom:1px solid var(--line); vertical-align: top; }
  th { color: var(--muted); font-weight: 600; }
  .Ready, .Healthy, .healthy, .succeeded { color: var(--ok); }
  .Suspect, .Progressing, .Cordoned, .Draining, .Pending, .warning, .running { color: var(--warn); }
  .Unreachable, .Degraded, .Unschedulable, .CrashLoop, .Failed, .Unhealthy, .error, .failed { color: var(--bad); }
  .sim { color: var(--sim); font-size: .8em; border:1px solid var(--sim); border-radius: 3px; padding: 0 .25em; margin-left:.3em; }
  .muted { color: var(--muted); }
  #msg { color: var(--bad); }
  pre { margin:0; white-space: pre-wrap; }
</style>
</head>
<body>
<header>
  <h1>Drover</h1>
  <label>API token <input id="token" type="password" placeholder="paste a viewer token"></label>
  <nav id="tabs"></nav>
  <span id="summary" class="muted"></span>
  <span id="msg"></span>
</header>
<main id="view"></main>
<script>
(function () {
  var tabs = ['nodes', 'roles', 'assignments', 'events'];
  var current = location.hash.slice(1) || 'nodes';
  var tokenEl = document.getElementById('token');
  tokenEl.value = localStorage.getItem('drover.token') || '';
  tokenEl.addEventListener('change', function () { localStorage.setItem('drover.token', tokenEl.value.trim()); refresh(); startEvents(); });
  var events = [];
  function esc(s) { return String(s == null ? '' : s).replace(/[&<>"]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]; }); }
  function cls(s) { return '<span class="' + esc(s) + '">' + esc(s) + '</span>'; }
  function sim(i) { return i.simulated ? (i.simulator === 'kwok' ? '<span class="sim" title="a node simulated by kwok: the real scheduler places pods on it, no containers run">simulated (kwok)</span>' : '<span class="sim" title="a stand-in that honours the same flags and health endpoints, not the real binary">simulated</span>') : ''; }
  function api(path) {
    return fetch(path, { headers: { authorization: 'Bearer ' + tokenEl.value.trim() } }).then(function (r) {
      return r.json().then(function (b) { if (!r.ok) throw new Error(b.code + ': ' + b.message); return b; });
    });
  }
  function table(head, rows) {
    return '<table><thead><tr>' + head.map(function (h) { return '<th>' + esc(h) + '</th>'; }).join('') + '</tr></thead><tbody>' +
      (rows.length ? rows.join('') : '<tr><td colspan="' + head.length + '" class="muted">none</td></tr>') + '</tbody></table>';
  }
  function tr(cells) { return '<tr>' + cells.map(function (c) { return '<td>' + c + '</td>'; }).join('') + '</tr>'; }
  function ago(iso) { if (!iso) return '-'; var s = Math.round((Date.now() - Date.parse(iso)) / 1000); return s < 0 ? '0s' : s + 's ago'; }
  var render = {
    nodes: function () {
      return api('/v1/nodes').then(function (b) {
        return table(['NODE', 'STATE', 'ADDRESS', 'CLUSTER', 'INSTANCES', 'PLAN', 'HEARTBEAT'], b.items.map(function (n) {
          return tr([esc(n.id) + ' <span class="muted">' + esc(n.hostname) + '</span>', cls(n.state), esc(n.address), esc(n.cluster),
            n.instances.map(function (i) { return esc(i.id) + ' ' + cls(i.phase) + sim(i); }).join('<br>'),
            'gen ' + n.plan.generation + (n.plan.converged ? '' : ' <span class="Progressing">applying</span>') + (n.plan.error ? ' <span class="error">' + esc(n.plan.error) + '</span>' : ''),
            ago(n.lastHeartbeat)]);
        }));
      });
    },
    roles: function () {
      return api('/v1/roles').then(function (b) {
        return table(['ROLE', 'CLUSTER', 'STATUS', 'HEALTHY', 'SIMULATED', 'REASONS'], b.items.map(function (r) {
          return tr([esc(r.name), esc(r.cluster), cls(r.status), r.healthy + '/' + r.desired, r.simulated ? '<span class="sim">' + r.simulated + '</span>' : '0',
            '<pre>' + esc(r.reasons.join('\\n')) + '</pre>']);
        }));
      });
    },
    assignments: function () {
      return api('/v1/assignments').then(function (b) {
        return table(['INSTANCE', 'NODE', 'EPOCH', 'PHASE', 'HEALTH', 'RESTARTS'], b.items.map(function (a) {
          return tr([esc(a.instanceId) + sim(a), esc(a.nodeId), a.epoch, cls(a.phase), cls(a.health), a.restarts]);
        }).concat(b.unplaced.map(function (u) { return tr([esc(u.instanceId), '<span class="Unschedulable">unplaced</span>', '', '', '', esc(u.reason)]); })));
      });
    },
    events: function () {
      return Promise.resolve(table(['SEQ', 'TIME', 'SEVERITY', 'KIND', 'MESSAGE'], events.slice().reverse().slice(0, 300).map(function (e) {
        return tr([e.seq, esc(e.time.slice(11, 19)), cls(e.severity), esc(e.kind), esc(e.message)]);
      })));
    }
  };
  function drawTabs() {
    document.getElementById('tabs').innerHTML = tabs.map(function (t) { return '<button data-t="' + t + '" class="' + (t === current ? 'on' : '') + '">' + t + '</button>'; }).join(' ');
  }
  document.getElementById('tabs').addEventListener('click', function (e) { var t = e.target.getAttribute('data-t'); if (t) { current = t; location.hash = t; drawTabs(); refresh(); } });
  function refresh() {
    var msg = document.getElementById('msg');
    if (!tokenEl.value.trim()) { msg.textContent = 'paste an API token to begin'; return; }
    render[current]().then(function (html) { document.getElementById('view').innerHTML = html; msg.textContent = ''; }, function (e) { msg.textContent = e.message; });
    api('/v1/status').then(function (s) {
      document.getElementById('summary').textContent = (s.converged ? 'converged' : 'converging') + ' \\u00b7 epoch ' + s.epoch + ' \\u00b7 ' +
        Object.keys(s.nodes).map(function (k) { return s.nodes[k] + ' ' + k; }).join(', ') + (s.natsConnected ? '' : ' \\u00b7 NATS disconnected');
    }, function () {});
  }
  var abort;
  function startEvents() {
    if (abort) abort.abort();
    if (!tokenEl.value.trim()) return;
    abort = new AbortController();
    var last = events.length ? events[events.length - 1].seq : 0;
    fetch('/v1/events?since=' + last, { signal: abort.signal, headers: { accept: 'text/event-stream', authorization: 'Bearer ' + tokenEl.value.trim() } }).then(function (r) {
      if (!r.ok || !r.body) throw new Error('events: HTTP ' + r.status);
      var reader = r.body.getReader(); var dec = new TextDecoder(); var buf = '';
      function pump() {
        return reader.read().then(function (x) {
          if (x.done) throw new Error('stream ended');
          buf += dec.decode(x.value, { stream: true });
          var i;
          while ((i = buf.indexOf('\\n\\n')) >= 0) {
            var block = buf.slice(0, i); buf = buf.slice(i + 2);
            var data = block.split('\\n').filter(function (l) { return l.indexOf('data: ') === 0; }).map(function (l) { return l.slice(6); }).join('\\n');
            if (data) { events.push(JSON.parse(data)); if (events.length > 2000) events.shift(); if (current === 'events') refresh(); }
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () { setTimeout(startEvents, 3000); });
  }
  drawTabs(); refresh(); startEvents();
  setInterval(function () { if (current !== 'events') refresh(); }, 3000);
})();
</script>
</body>
</html>
`;

/** A small page listing the operations of the OpenAPI document at /docs/json. */
export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drover API</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:1rem 2rem;color:#1d2330}code{background:#f2f4f7;padding:0 .2em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e4e7ec;vertical-align:top}
.m{font-weight:700;font-family:monospace}.muted{color:#667085}</style></head>
<body><h1>Drover coordinator API</h1>
<p>The machine-readable document is <a href="/docs/json">/docs/json</a> (OpenAPI 3.1). Send <code>Authorization: Bearer &lt;token&gt;</code>.
Errors are <code>{ code, message, details }</code>.</p>
<table id="ops"><thead><tr><th>method</th><th>path</th><th>what</th></tr></thead><tbody></tbody></table>
<script>
fetch('/docs/json').then(function (r) { return r.json(); }).then(function (doc) {
  var rows = [];
  Object.keys(doc.paths).sort().forEach(function (p) {
    Object.keys(doc.paths[p]).forEach(function (m) {
      var op = doc.paths[p][m];
      var d = String(op.description || '').replace(/[&<>]/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;' }[c]; }).replace(/\\n/g, '<br>');
      rows.push('<tr><td class="m">' + m.toUpperCase() + '</td><td><code>' + p + '</code></td><td>' + d + '</td></tr>');
    });
  });
  document.querySelector('#ops tbody').innerHTML = rows.join('');
});
</script></body></html>
`;
