// reloadsup's browser client: LiveReload protocol 7, written for reloadsup.
//
// Include it with one tag (the proxy and `serve` inject it for you):
//   <script src="http://127.0.0.1:35729/livereload.js" defer></script>
// Options come from the tag's own query string (or `window.LiveReloadOptions`), as
// with livereload.js: host, port (blank = the script URL's own port, or none), path
// (default `livereload`, no leading slash), https, mindelay and maxdelay (reconnect
// backoff, ms; default 250 and 2000), handshake_timeout (ms).
// Events on `document`: LiveReloadConnect, LiveReloadDisconnect; dispatching
// LiveReloadShutDown disconnects for good.
// It swaps stylesheets and images in place, reloads the page for anything else, keeps
// the scroll position across the reloads it makes, reconnects quickly and never reloads
// merely because it reconnected. Tests observe `window.__reloadsup`.
(function () {
  'use strict';

  if (window.__reloadsup) return; // included twice (say, by the extension too)

  var OFFICIAL_7 = 'http://livereload.com/protocols/official-7';
  var VENDOR = 'https://reloadsup.invalid/protocols/reloadsup-1';
  var SCROLL_KEY = '__reloadsup.scroll:';
  // How long a page that answered a POST waits to learn whether its URL takes a GET.
  var PROBE_FOR = 3000;
  // How long after a reload is asked for another is taken for the same one.
  var RELOAD_ONCE_FOR = 1000;
  // When this page last asked the browser to reload it.
  var reloadAsked = 0;
  // A GET's answers that say its URL serves no GET (or none without the form's fields).
  var NOT_FOR_GET = [400, 404, 405, 410, 422, 501];
  var IMAGE = /\.(jpe?g|png|gif|svg|webp|avif|ico|bmp)$/i;
  var CSS = /\.css(\.map)?$/i;
  var verbose = /LR-verbose/.test(location.href);

  var state = {
    connected: false, // a handshaken socket is open
    reloads: 0, // `reload` messages handled on this page
    instance: null, // the supervisor's id, from its hello
    status: null, // the dev server's state, from `status` (restarting|ready|failed)
    message: null, // why it failed, with `failed`
    build: null, // which build steps failed at their last run, and how
    url: null, // the WebSocket URL
    blocked: null, // the page's policy directive that blocks the socket, if one does
  };
  window.__reloadsup = state;
  // Set when a new supervisor instance answered: reload at its first `ready`.
  var reloadWhenReady = false;
  // How many changes the server had told pages of when it served this script (the
  // server writes the number in): a change broadcast while this page was loading, its
  // socket not yet open, shows as a larger number in the first `status` after `hello`.
  var generation = /* generation */0;
  var firstStatus = false;

  function log() {
    if (verbose) console.log.apply(console, ['[reloadsup]'].concat([].slice.call(arguments)));
  }

  // ---- options ----------------------------------------------------------------------

  function findScript() {
    if (document.currentScript && document.currentScript.src) return document.currentScript;
    var scripts = document.getElementsByTagName('script');
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/(^|\/)z?livereload\.js(\?|#|$)/.test(scripts[i].src)) return scripts[i];
    }
    return null;
  }

  function options() {
    var script = findScript();
    var src = new URL(script ? script.src : location.href, location.href);
    var q = src.searchParams;
    var given = window.LiveReloadOptions || {};
    var get = function (name) {
      if (name in given) return String(given[name]);
      return q.has(name) ? q.get(name) : null;
    };
    var number = function (name, fallback) {
      var n = parseInt(get(name), 10);
      return n > 0 ? n : fallback;
    };
    var port = get('port');
    if (port === null) port = src.port || '35729';
    else if (port === '') port = src.port; // blank: follow the script's origin
    var secure = get('https');
    secure = secure === null ? src.protocol === 'https:' : secure === 'true' || secure === '1';
    var host = get('host') || src.hostname;
    if (host.indexOf(':') >= 0 && host.charAt(0) !== '[') host = '[' + host + ']';
    var path = (get('path') || 'livereload').replace(/^\/+/, '');
    var min = number('mindelay', 250);
    return {
      url: (secure ? 'wss://' : 'ws://') + host + (port ? ':' + port : '') + '/' + path,
      mindelay: min,
      maxdelay: Math.max(min, number('maxdelay', 2000)),
      handshake: number('handshake_timeout', number('handshake-timeout', 5000)),
      // The page answered a POST: reload it with a GET of its URL, not by sending the
      // form again (the proxy says so in the tag it puts in).
      reloadByGet: get('reload') === 'get',
    };
  }

  var opts = options();
  state.url = opts.url;

  // ---- the connection ---------------------------------------------------------------

  var socket = null;
  var delay = opts.mindelay;
  var retry = null;
  var handshakeTimer = null;
  var paused = false; // in the back/forward cache, or shut down

  function fire(name) {
    document.dispatchEvent(new CustomEvent(name));
  }

  function connect() {
    clearTimeout(retry);
    retry = null;
    if (paused || socket) return;
    log('connecting to', opts.url);
    var ws;
    try {
      ws = new WebSocket(opts.url);
    } catch (err) {
      log('cannot connect:', err);
      return schedule();
    }
    socket = ws;
    var shook = false;
    ws.onopen = function () {
      ws.send(JSON.stringify({ command: 'hello', protocols: [OFFICIAL_7, VENDOR] }));
      handshakeTimer = setTimeout(function () { ws.close(); }, opts.handshake);
    };
    ws.onmessage = function (event) {
      var msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        return ws.close(); // a protocol error: start over
      }
      if (!shook) {
        if (!msg || msg.command !== 'hello' || (msg.protocols || []).indexOf(OFFICIAL_7) < 0) {
          return ws.close();
        }
        shook = true;
        onHello(ws, msg);
      } else {
        onCommand(msg);
      }
    };
    ws.onclose = function () {
      clearTimeout(handshakeTimer);
      if (socket !== ws) return;
      socket = null;
      if (state.connected) {
        state.connected = false;
        fire('LiveReloadDisconnect');
      }
      schedule();
    };
  }

  function onHello(ws, hello) {
    clearTimeout(handshakeTimer);
    delay = opts.mindelay;
    // A new instance means reloadsup itself restarted while this page was open, and
    // may have missed a change: reload once. A reconnect to the same one changes nothing.
    // Our own server says when the dev server is ready (`status`), so wait for that:
    // reloading into a server that is still starting would show an error page.
    var before = state.instance;
    state.instance = hello.instance || null;
    if (before && state.instance && before !== state.instance) {
      if ((hello.protocols || []).indexOf(VENDOR) < 0) {
        log('reloadsup restarted; reloading');
        return reloadPage();
      }
      log('reloadsup restarted; reloading once the server is ready');
      reloadWhenReady = true;
    }
    firstStatus = true;
    state.connected = true;
    ws.send(JSON.stringify({ command: 'info', plugins: {}, url: location.href }));
    fire('LiveReloadConnect');
    log('connected');
  }

  function schedule() {
    if (paused || retry) return;
    retry = setTimeout(connect, delay);
    delay = Math.min(delay * 2, opts.maxdelay);
  }

  function disconnect() {
    clearTimeout(retry);
    retry = null;
    if (socket) {
      var ws = socket;
      ws.onclose(); // report now; the close event may come after the page is frozen
      ws.onclose = null;
      ws.close();
    }
  }

  // A page policy that blocks the socket (one in a <meta>, which the proxy cannot widen
  // as it widens a header) is told in the console once, not left to fail in silence.
  document.addEventListener('securitypolicyviolation', function (event) {
    var blocked = String(event.blockedURI || '');
    var ours = blocked && (opts.url.indexOf(blocked) === 0 || blocked.indexOf(opts.url) === 0);
    if (!ours || state.blocked) return;
    state.blocked = event.effectiveDirective || event.violatedDirective;
    console.warn('[reloadsup] this page\'s Content-Security-Policy (' + state.blocked +
      ') blocks the live-reload socket ' + opts.url + "; allow it, e.g. connect-src 'self'");
  });

  // bfcache: a page with an open WebSocket is not kept, and a kept page must not hold one.
  window.addEventListener('pagehide', function () { paused = true; disconnect(); });
  window.addEventListener('pageshow', function (event) {
    // Back from the back/forward cache: whatever navigation left it is over.
    if (event.persisted) leaving = 0;
    paused = false;
    connect();
  });
  document.addEventListener('LiveReloadShutDown', function () { paused = true; disconnect(); });

  // ---- commands ---------------------------------------------------------------------

  function onCommand(msg) {
    if (!msg) return;
    if (msg.command === 'reload') {
      state.reloads += 1;
      seen(msg.generation);
      onReload(msg);
    } else if (msg.command === 'alert') {
      window.alert(msg.message);
    } else if (msg.command === 'status') {
      state.status = msg.state;
      state.message = msg.message || null;
      state.build = msg.build || null;
      badge(msg.state, msg.message, msg.build);
      if (firstStatus && typeof msg.generation === 'number' && msg.generation > generation) {
        log('a change came while this page loaded; reloading once the server is ready');
        reloadWhenReady = true;
      }
      firstStatus = false;
      seen(msg.generation);
      if (reloadWhenReady && msg.state === 'ready') {
        reloadWhenReady = false;
        reloadPage();
      }
    }
  }

  function seen(number) {
    if (typeof number === 'number' && number > generation) generation = number;
  }

  function onReload(msg) {
    var path = String(msg.path || '').split(/[?#]/)[0];
    log('reload', path);
    if (msg.liveCSS !== false && CSS.test(path)) return reloadStylesheets(path);
    if (msg.liveImg !== false && IMAGE.test(path)) return reloadImages(path);
    reloadPage();
  }

  // A navigation this page began (a link, a form, a script) that has not replaced it
  // yet. While the server restarts the proxy holds its request, and the reload that
  // comes once the server is ready would cancel it: the user was back on the old page,
  // and the form the server had taken was lost. The navigation's answer comes from the
  // new server anyway, so a reload then waits LEAVE_GRACE for it to replace the page
  // (a first request may compile for seconds), and goes only if it did not (a
  // download, a 204).
  var leaving = 0; // when the latest such navigation began
  var LEAVING_FOR = 300000; // a navigation older than this went nowhere
  var LEAVE_GRACE = 15000;
  var deferred = false;

  // Whether a link or form's target (`target`, or a button's `formtarget`) is this tab.
  function inThisTab(element) {
    var target = element && element.getAttribute('target');
    return !target || target === '_self';
  }

  // Whether a URL leads to a page (`http:`, `https:`): a `mailto:` or `tel:` link
  // opens another program, and this page stays.
  function isWeb(url) {
    return /^https?:/i.test(url);
  }

  if (window.navigation && window.navigation.addEventListener) {
    window.navigation.addEventListener('navigate', function (event) {
      if (event.destination.sameDocument || event.downloadRequest !== null) return;
      if (event.navigationType === 'reload' || !isWeb(event.destination.url)) return;
      leaving = Date.now();
    });
    // Handled by the page itself (a router), or cancelled: nothing is leaving.
    window.navigation.addEventListener('navigatesuccess', function () { leaving = 0; });
    window.navigation.addEventListener('navigateerror', function () { leaving = 0; });
  } else {
    // No Navigation API: links and forms that go elsewhere in this tab.
    window.addEventListener('click', function (event) {
      var link = event.target && event.target.closest && event.target.closest('a[href]');
      if (!link || event.defaultPrevented || link.hasAttribute('download')) return;
      if (!inThisTab(link) || !isWeb(link.href)) return;
      if (link.href.split('#')[0] === location.href.split('#')[0]) return;
      leaving = Date.now();
    });
    window.addEventListener('submit', function (event) {
      if (event.defaultPrevented) return;
      var submitter = event.submitter;
      if (submitter && submitter.hasAttribute('formtarget')) {
        if (submitter.getAttribute('formtarget') !== '_self') return;
      } else if (!inThisTab(event.target)) {
        return;
      }
      leaving = Date.now();
    });
  }

  function reloadPage() {
    // A page that loaded while the server restarted reloads at its `ready` status, and
    // the `reload` that follows it at once would only start the same load again (the
    // server rendered the page twice).
    if (reloadAsked && Date.now() - reloadAsked < RELOAD_ONCE_FOR) return;
    if (leaving && Date.now() - leaving < LEAVING_FOR) {
      if (deferred) return;
      deferred = true;
      var began = leaving;
      log('a navigation is under way: reloading only if it has not replaced this page in',
        LEAVE_GRACE, 'ms');
      setTimeout(function () {
        deferred = false;
        if (leaving === began) leaving = 0;
        reloadPage();
      }, LEAVE_GRACE);
      return;
    }
    reloadAsked = Date.now();
    if (opts.reloadByGet) return reloadByGet(location.href.split('#')[0]);
    saveScroll(location.href);
    location.reload();
  }

  function saveScroll(url) {
    try {
      sessionStorage.setItem(SCROLL_KEY + url, JSON.stringify([window.scrollX, window.scrollY]));
    } catch (err) { /* storage disabled: lose the scroll position */ }
  }

  // A page that answered a POST, reloaded by a GET of its URL rather than by sending
  // the form again. A URL that takes POSTs only (Express's `app.post('/submit')`) would
  // answer that GET with a 404 (or 405, 501), and one that reads the form's fields a
  // 400, 410 or 422: then the page goes back to the form that was sent, its referrer
  // on this site, instead of leaving "Cannot GET /submit" in the tab. A HEAD asks
  // first; one not answered as found (a 404 from a server routing on the method alone,
  // a 405 or 501 from FastAPI's GET routes or a Python handler without `do_HEAD`) is
  // asked again as a GET, which decides. Any other answer is loaded: a login wall
  // (401, 403), a rate limit (429), a server error are the page to see. No answer to
  // a question in 3 s: the GET.
  function reloadByGet(url) {
    var back = document.referrer;
    var sameSite = back && back.split('/').slice(0, 3).join('/') === location.origin;
    var go = function (to) {
      if (to === url) saveScroll(to);
      location.replace(to);
    };
    var found = function (answer) { return answer.status < 400; };
    var refused = function (answer) { return NOT_FOR_GET.indexOf(answer.status) >= 0; };
    var ask = function (method) {
      var stop = window.AbortController ? new AbortController() : null;
      if (stop) setTimeout(function () { stop.abort(); }, PROBE_FOR);
      return fetch(url, {
        method: method, cache: 'no-store', credentials: 'same-origin',
        signal: stop ? stop.signal : undefined,
      });
    };
    if (!sameSite || back === url || !window.fetch) return go(url);
    ask('HEAD')
      .then(function (answer) { return found(answer) ? answer : ask('GET'); })
      .then(function (answer) { go(refused(answer) ? back : url); }, function () { go(url); });
  }

  function restoreScroll() {
    var saved;
    try {
      saved = sessionStorage.getItem(SCROLL_KEY + location.href);
      sessionStorage.removeItem(SCROLL_KEY + location.href);
    } catch (err) { return; }
    if (!saved) return;
    var xy = JSON.parse(saved);
    var restore = function () { window.scrollTo(xy[0], xy[1]); };
    if (document.readyState === 'complete') restore();
    else window.addEventListener('load', restore);
  }

  // How many trailing path segments two paths share: `/home/me/app/static/site.css` and
  // `/static/site.css` share 2.
  function shared(a, b) {
    var x = a.split('/').filter(Boolean);
    var y = b.split('/').filter(Boolean);
    var n = 0;
    while (n < x.length && n < y.length && x[x.length - 1 - n] === y[y.length - 1 - n]) n++;
    return n;
  }

  // `url`'s path, resolved against `base` (the page's address if none is given).
  function pathOf(url, base) {
    try {
      return decodeURIComponent(new URL(url, base || location.href).pathname);
    } catch (err) {
      return '';
    }
  }

  function bust(url, base) {
    var u = new URL(url, base || location.href);
    u.searchParams.set('reloadsup', String(Date.now()));
    return u.href;
  }

  // Fetches the file afresh at its own URL (without our `reloadsup=` parameter), so the
  // browser's cache holds the new version: the next page load asks for that URL, and a
  // server that sends no `Cache-Control` (Python's) lets the browser reuse what it
  // cached without asking, so the page would come back with the old stylesheet.
  function refresh(url, base) {
    try {
      var u = new URL(url, base || location.href);
      u.searchParams.delete('reloadsup');
      fetch(u.href, { cache: 'reload', mode: 'no-cors', credentials: 'same-origin' })
        .catch(function () { /* offline or refused: only the cache stays old */ });
    } catch (err) { /* no fetch or a bad URL: nothing to refresh */ }
  }

  // `value` (a CSS value) with each `url(...)` naming `path` made fresh; `null` if none
  // does. A URL in a stylesheet is relative to the sheet's address (`base`), and is
  // written back whole, so it still leads to the same file.
  function bustUrls(value, path, base) {
    var changed = false;
    var next = value.replace(/url\((['"]?)([^'")]+)\1\)/g, function (all, quote, url) {
      if (shared(path, pathOf(url, base)) === 0) return all;
      changed = true;
      refresh(url, base);
      return 'url(' + quote + bust(url, base) + quote + ')';
    });
    return changed ? next : null;
  }

  // The best-matching of `items` by trailing segments (all of them on a tie).
  function bestMatches(items, urlOf, path) {
    var best = 0;
    var found = [];
    items.forEach(function (item) {
      var score = shared(path, pathOf(urlOf(item)));
      if (score > best) { best = score; found = [item]; }
      else if (score === best && score > 0) found.push(item);
    });
    return found;
  }

  function reloadStylesheets(path) {
    var links = [].slice.call(document.querySelectorAll('link[rel~="stylesheet"][href]'))
      .filter(function (link) { return !link.__reloadsupOld && /^https?:/.test(link.href); });
    var imports = styleImports();
    var sheet = path.replace(/\.map$/i, '');
    var matched = bestMatches(links, function (link) { return link.href; }, sheet);
    var matchedImports = bestMatches(imports, function (rule) { return rule.href; }, sheet);
    if (!matched.length && !matchedImports.length) {
      matched = links;
      matchedImports = imports;
    }
    matched.forEach(swapLink);
    // Last rule first, so the indexes of the others in the same sheet stay right.
    matchedImports.reverse().forEach(swapImport);
  }

  // The `@import` rules of the page's `<style>` elements (a `<link>`ed sheet's own
  // imports come afresh with it), each with its sheet, place and absolute URL.
  function styleImports() {
    var found = [];
    [].slice.call(document.styleSheets).forEach(function (sheet) {
      if (!sheet.ownerNode || sheet.ownerNode.nodeName !== 'STYLE') return;
      var rules;
      try { rules = sheet.cssRules; } catch (err) { return; }
      for (var i = 0; i < rules.length; i++) {
        var rule = rules[i];
        if (rule.type !== CSSRule.IMPORT_RULE || !rule.href) continue;
        var href = new URL(rule.href, document.baseURI).href; // as the page resolves it
        if (/^https?:/.test(href)) found.push({ sheet: sheet, index: i, href: href, rule: rule });
      }
    });
    return found;
  }

  // Replaces an `@import` rule with one for a fresh URL of the same sheet and media.
  function swapImport(item) {
    refresh(item.href);
    var media = item.rule.media && item.rule.media.mediaText;
    var text = '@import url("' + bust(item.href) + '")' + (media ? ' ' + media : '') + ';';
    try {
      item.sheet.deleteRule(item.index);
      item.sheet.insertRule(text, item.index);
    } catch (err) {
      log('cannot refresh', item.href, err);
    }
  }

  // Clone the link with a fresh URL and drop the old one only once the new one has
  // loaded, so the page is never unstyled in between. One that fails to load (a dev
  // server that compiles the sheet answering 500 for an error in it) goes, and the old
  // one stays: the page keeps its last good styles.
  function swapLink(link) {
    link.__reloadsupOld = true;
    var clone = link.cloneNode(false);
    refresh(link.href);
    clone.href = bust(link.href);
    var done = false;
    var finish = function () {
      if (done) return;
      done = true;
      if (link.parentNode) link.parentNode.removeChild(link);
    };
    clone.addEventListener('load', finish);
    clone.addEventListener('error', function () {
      if (done) return;
      done = true;
      log('cannot load', clone.href, '- keeping the last one');
      link.__reloadsupOld = false;
      if (clone.parentNode) clone.parentNode.removeChild(clone);
    });
    setTimeout(finish, 15000); // some browsers fire neither for a cached sheet
    link.parentNode.insertBefore(clone, link.nextSibling);
  }

  // An image is made fresh where the page uses it: `<img>` elements, inline styles, and
  // the rules of the page's stylesheets (a `background: url(...)`); if the page uses it
  // nowhere that can be seen, the page reloads.
  function reloadImages(path) {
    var images = [].slice.call(document.images).filter(function (img) { return /^https?:/.test(img.src); });
    var matched = bestMatches(images, function (img) { return img.src; }, path);
    // Each one loaded aside first, and put in only if it loads: a broken image in its
    // place would be worse than the old one.
    matched.forEach(function (img) {
      refresh(img.src);
      var fresh = bust(img.src);
      var probe = new Image();
      probe.onload = function () { img.src = fresh; };
      probe.onerror = function () { log('cannot load', fresh, '- keeping the last one'); };
      probe.src = fresh;
    });
    var found = matched.length > 0;
    [].slice.call(document.querySelectorAll('[style*="url("]')).forEach(function (el) {
      found = bustStyle(el.style, path, location.href) || found;
    });
    [].slice.call(document.styleSheets).forEach(function (sheet) {
      found = bustRules(sheet, path, sheet.href || location.href) || found;
    });
    if (!found) reloadPage();
  }

  // Makes fresh the `url(...)`s naming `path` in a style declaration; whether any did.
  function bustStyle(style, path, base) {
    var found = false;
    for (var i = 0; i < style.length; i++) {
      var name = style[i];
      var value = style.getPropertyValue(name);
      if (value.indexOf('url(') < 0) continue;
      var next = bustUrls(value, path, base);
      if (next === null) continue;
      style.setProperty(name, next, style.getPropertyPriority(name));
      found = true;
    }
    return found;
  }

  // The same through a stylesheet's rules, nested ones (`@media`) and imported sheets
  // included; a sheet from another origin cannot be read and is skipped.
  function bustRules(sheet, path, base) {
    var rules;
    try { rules = sheet.cssRules; } catch (err) { return false; }
    var found = false;
    [].slice.call(rules || []).forEach(function (rule) {
      if (rule.style) found = bustStyle(rule.style, path, base) || found;
      if (rule.cssRules) found = bustRules(rule, path, base) || found;
      if (rule.styleSheet) { // @import: relative to the imported sheet
        found = bustRules(rule.styleSheet, path, rule.styleSheet.href || base) || found;
      }
    });
    return found;
  }

  // ---- a small badge for the dev server's state (our vendor protocol only) ----------

  var badgeEl = null;

  // While the server is up, a build step that failed shows: the page is the one made
  // from the files the step did not make anew.
  function badge(status, message, build) {
    var failedStep = status === 'ready' && build;
    if ((status === 'ready' && !build) || !document.body) {
      if (badgeEl && badgeEl.parentNode) badgeEl.parentNode.removeChild(badgeEl);
      badgeEl = null;
      return;
    }
    if (!badgeEl) {
      badgeEl = document.createElement('div');
      badgeEl.id = '__reloadsup-status';
      badgeEl.style.cssText = 'position:fixed;right:8px;bottom:8px;z-index:2147483647;' +
        'max-width:40em;padding:4px 8px;border-radius:4px;font:12px/1.4 monospace;' +
        'white-space:pre-wrap;color:#fff;pointer-events:none;opacity:.9';
      document.body.appendChild(badgeEl);
    }
    badgeEl.style.background = status === 'failed' || failedStep ? '#b00020' : '#444';
    if (status === 'failed') {
      badgeEl.textContent = 'reloadsup: the server failed' + (message ? ': ' + message : '');
    } else if (failedStep) {
      badgeEl.textContent = 'reloadsup: ' + build;
    } else {
      badgeEl.textContent = 'reloadsup: restarting…';
    }
  }

  restoreScroll();
  connect();
})();
