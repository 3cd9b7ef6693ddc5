/** The status page's document: a skeleton the script fills in from `/ui/api/status`. */
export const PAGE_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mirrorgate status</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/status.css">
<script src="/ui/status.js" defer></script>
</head>
<body>
<header>
  <h1>mirrorgate <span class="muted">status</span></h1>
  <p id="updated" class="muted">loading…</p>
</header>
<main>
  <p id="error" class="error" hidden></p>
  <section class="cards" id="cards"></section>
  <section>
    <h2>Requests answered from the cache and sent upstream</h2>
    <p class="muted">Manifest, tag and blob lookups, per 5 minutes, over the last 6 hours (since the mirror started, at most).</p>
    <div id="chart" class="chart"></div>
  </section>
  <section>
    <h2>Upstreams</h2>
    <table id="upstreams"><thead><tr><th>upstream</th><th>last success</th><th>last failure</th><th>pull quota left</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Images kept warm</h2>
    <p id="warm-note" class="muted"></p>
    <table id="warm"><thead><tr><th>image</th><th>state</th><th>digest</th><th>platforms</th><th>size</th><th>fetched</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Repositories</h2>
    <p id="repos-note" class="muted"></p>
    <table id="repos"><thead><tr><th>repository</th><th>tags (most recently used first)</th><th>size</th><th>last used</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
`;
