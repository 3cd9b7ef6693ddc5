/**
 * The status page's script: reads `/ui/api/status` every 15 s and draws the page with DOM calls (text is
 * always set as text, never parsed as HTML). Plain ES2017 for any browser; no template literals, since it
 * lives in one.
 */
export const PAGE_JS = String.raw`(function () {
  'use strict';
  var REFRESH_MS = 15000;
  var BUCKET_MINUTES = 5;
  var SVG_NS = 'http://www.w3.org/2000/svg';

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return node;
  }

  function svg(tag, attrs, content) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function bytes(n) {
    if (n === undefined || n === null) return '—';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var v = n;
    var i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + ' ' + units[i];
  }

  function count(n) { return Number(n).toLocaleString('en'); }

  function plural(n, word) { return count(n) + ' ' + word + (n === 1 ? '' : 's'); }

  function duration(ms) {
    if (ms % 3600000 === 0) return (ms / 3600000) + ' h';
    if (ms % 60000 === 0) return (ms / 60000) + ' min';
    return Math.round(ms / 1000) + ' s';
  }

  function ago(ms, now) {
    var s = Math.max(0, Math.round((now - ms) / 1000));
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  function when(ms, now) {
    if (ms === undefined || ms === null) return el('span', { 'class': 'muted', text: 'never' });
    return el('span', { title: new Date(ms).toISOString(), text: ago(ms, now) });
  }

  function clock(ms) {
    var d = new Date(ms);
    var pad = function (x) { return (x < 10 ? '0' : '') + x; };
    return pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  function shortDigest(d) { return d ? d.slice(0, 19) : '—'; }

  function sum(xs) { return xs.reduce(function (a, b) { return a + b; }, 0); }

  function fill(id, rows, columns, empty) {
    var body = document.querySelector('#' + id + ' tbody');
    body.textContent = '';
    if (rows.length === 0) {
      body.appendChild(el('tr', {}, [el('td', { colspan: String(columns), 'class': 'empty', text: empty })]));
      return;
    }
    rows.forEach(function (cells) {
      body.appendChild(el('tr', {}, cells.map(function (c) { return el('td', {}, [c]); })));
    });
  }

  function card(label, value, sub, ratio) {
    var children = [el('div', { 'class': 'label', text: label }), el('div', { 'class': 'value', text: value }), el('div', { 'class': 'sub', text: sub })];
    if (ratio !== undefined) {
      var inner = el('div');
      inner.style.width = Math.min(100, Math.round(ratio * 100)) + '%';
      children.push(el('div', { 'class': 'bar' }, [inner]));
    }
    return el('div', { 'class': 'card' }, children);
  }

  function renderCards(r) {
    var cards = document.getElementById('cards');
    cards.textContent = '';
    var size = r.cache.sizeBytes;
    var cap = r.cache.maxSize;
    cards.appendChild(card('Cache', bytes(size), cap !== undefined ? 'of a ' + bytes(cap) + ' cap' : 'no size cap', cap !== undefined && size !== undefined ? size / cap : undefined));
    var contents = r.cache.contents;
    var tags = sum(contents.repositories.map(function (x) { return x.tagCount; }));
    cards.appendChild(card('Repositories', count(contents.total), plural(tags, 'tag') + ' cached'));
    var fromCache = sum(r.traffic.cache);
    var upstream = sum(r.traffic.upstream);
    var total = fromCache + upstream;
    cards.appendChild(card('Answered from the cache', total === 0 ? '—' : Math.round((fromCache / total) * 100) + '%',
      count(fromCache) + ' of ' + count(total) + ' lookups; ' + count(upstream) + ' sent upstream'));
    var hub = r.upstreams.filter(function (u) { return u.host === 'docker.io'; })[0];
    var quota = hub && hub.rateLimit;
    cards.appendChild(card('Docker Hub pull quota', quota && quota.remaining !== undefined ? count(quota.remaining) + (quota.limit !== undefined ? ' / ' + count(quota.limit) : '') : '—',
      quota ? 'pulls left in the window' : 'not reported yet (from manifest answers)'));
  }

  function renderChart(t) {
    var box = document.getElementById('chart');
    box.textContent = '';
    var bars = [];
    for (var i = 0; i < t.cache.length; i += BUCKET_MINUTES) {
      bars.push({
        at: t.start + i * t.stepMs,
        cache: sum(t.cache.slice(i, i + BUCKET_MINUTES)),
        upstream: sum(t.upstream.slice(i, i + BUCKET_MINUTES)),
      });
    }
    var W = 960, H = 220, left = 44, right = 8, top = 10, bottom = 24;
    var plotW = W - left - right, plotH = H - top - bottom;
    var peak = Math.max.apply(null, bars.map(function (b) { return b.cache + b.upstream; }).concat([1]));
    var step = Math.pow(10, Math.floor(Math.log10(peak)));
    var max = Math.ceil(peak / step) * step;
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'lookups answered from the cache and sent upstream' });
    [0, 0.5, 1].forEach(function (f) {
      var y = top + plotH - f * plotH;
      root.appendChild(svg('line', { x1: left, x2: W - right, y1: y, y2: y, 'class': 'axis' }));
      root.appendChild(svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', 'class': 'tick' }, count(Math.round(f * max))));
    });
    var slot = plotW / bars.length;
    bars.forEach(function (b, k) {
      var x = left + k * slot + 0.5;
      var w = Math.max(1, slot - 1);
      var hc = (b.cache / max) * plotH;
      var hu = (b.upstream / max) * plotH;
      if (hc > 0) root.appendChild(svg('rect', { x: x, y: top + plotH - hc, width: w, height: hc, 'class': 'cache' }));
      if (hu > 0) root.appendChild(svg('rect', { x: x, y: top + plotH - hc - hu, width: w, height: hu, 'class': 'upstream' }));
      if (k % 12 === 0) root.appendChild(svg('text', { x: x, y: H - 6, 'class': 'tick' }, clock(b.at)));
    });
    box.appendChild(root);
    box.appendChild(el('div', { 'class': 'legend' }, [
      el('span', {}, [el('i', { 'class': 'cache' }), 'answered from the cache (' + count(sum(t.cache)) + ')']),
      el('span', {}, [el('i', { 'class': 'upstream' }), 'sent upstream (' + count(sum(t.upstream)) + ')']),
    ]));
  }

  function renderUpstreams(r) {
    var now = r.generatedAt;
    fill('upstreams', r.upstreams.map(function (u) {
      var failure = u.lastFailure
        ? el('span', {}, [el('span', { 'class': 'state bad', text: u.lastFailure.outcome }), ' ', when(u.lastFailure.at, now)])
        : el('span', { 'class': 'muted', text: 'none' });
      var q = u.rateLimit;
      var quota = q && q.remaining !== undefined ? count(q.remaining) + (q.limit !== undefined ? ' of ' + count(q.limit) : '') : '—';
      return [el('code', { text: u.host }), when(u.lastSuccess, now), failure, quota];
    }), 4, 'no upstreams');
  }

  function renderWarm(r) {
    var w = r.warm;
    var now = r.generatedAt;
    document.getElementById('warm-note').textContent = w.images.length === 0
      ? 'No images are kept warm (mirror.warm.images).'
      : 'Fetched when the mirror starts and every ' + duration(w.refreshInterval) + ', for ' + w.platforms.join(', ') + '; never evicted.';
    fill('warm', w.images.map(function (i) {
      var fetched = el('div', {}, [when(i.warmedAt, now)]);
      if (i.error) fetched.appendChild(el('div', { 'class': 'muted', text: i.error.message }));
      return [
        el('code', { text: i.image }),
        el('span', { 'class': 'state ' + i.state, text: i.state }),
        el('code', { title: i.digest || '', text: shortDigest(i.digest) }),
        i.platforms === undefined ? '—' : i.platforms.length === 0 ? 'single platform' : i.platforms.join(', '),
        bytes(i.size),
        fetched,
      ];
    }), 6, 'none configured');
  }

  function renderRepositories(r) {
    var c = r.cache.contents;
    var now = r.generatedAt;
    document.getElementById('repos-note').textContent = count(c.total) + (c.total === 1 ? ' repository' : ' repositories') +
      (c.total > c.repositories.length ? '; the first ' + count(c.repositories.length) + ' by name are listed' : '');
    fill('repos', c.repositories.map(function (repo) {
      var tags = el('div', {}, repo.tags.map(function (t) {
        return el('span', { 'class': 'tag', title: t.digest }, [t.tag, ' ', el('span', { 'class': 'muted', text: bytes(t.size) + ' · ' + ago(t.lastUsed, now) })]);
      }));
      if (repo.tagCount > repo.tags.length) tags.appendChild(el('span', { 'class': 'muted', text: '+' + count(repo.tagCount - repo.tags.length) + ' more' }));
      if (repo.tagCount === 0) tags.appendChild(el('span', { 'class': 'muted', text: 'pulled by digest only' }));
      var name = el('div', {}, [el('code', { text: repo.name })]);
      if (repo.kind === 'hosted') name.appendChild(el('div', { 'class': 'muted', text: 'hosted' }));
      return [
        name,
        tags,
        el('div', {}, [bytes(repo.size), el('div', { 'class': 'muted', text: plural(repo.manifests, 'manifest') + ', ' + plural(repo.blobs, 'blob') })]),
        when(repo.lastUsed, now),
      ];
    }), 4, 'nothing cached yet');
  }

  function render(r) {
    renderCards(r);
    renderChart(r.traffic);
    renderUpstreams(r);
    renderWarm(r);
    renderRepositories(r);
    document.getElementById('updated').textContent = 'updated ' + new Date(r.generatedAt).toLocaleTimeString('en-GB') + ' · refreshes every ' + (REFRESH_MS / 1000) + ' s';
  }

  function showError(message) {
    var box = document.getElementById('error');
    box.textContent = message;
    box.hidden = false;
  }

  function load() {
    fetch('/ui/api/status', { credentials: 'same-origin', cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error('the mirror answered ' + res.status);
        return res.json();
      })
      .then(function (report) {
        document.getElementById('error').hidden = true;
        render(report);
      })
      .catch(function (err) { showError('Could not load the status: ' + err.message); })
      .then(function () { setTimeout(load, REFRESH_MS); });
  }

  load();
})();
`;
