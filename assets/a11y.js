// Large text as soon as this script runs: the preference is a cookie (chiiki/state.py UIState), read here
// instead of waiting for the server's answer over the websocket.
if (/(?:^|;\s*)chiiki_large_text=1(?:;|$)/.test(document.cookie)) {
  document.documentElement.classList.add('large-text');
}

// English from the first paint for those who chose it. The page is rendered in Japanese until the server's
// answer arrives; while the cookie asks for English, chiiki.css keeps a Japanese page root invisible, so
// an English reader never sees the page flash in Japanese first. If the answer does not come (no
// websocket), the page shows after a few seconds anyway.
if (/(?:^|;\s*)chiiki_lang=en(?:;|$)/.test(document.cookie)) {
  document.documentElement.lang = 'en';
  document.documentElement.setAttribute('data-lang-wanted', 'en');
  setTimeout(function () {
    if (document.documentElement.getAttribute('data-lang-wanted') === 'en') {
      document.documentElement.removeAttribute('data-lang-wanted');
    }
  }, 5000);
}

// Accessibility fixes for markup that third-party components render without the hooks we need:
// - react-dropzone's hidden file input gets the visible label named by its zone (data-label-id);
// - Radix table scroll areas become keyboard-focusable, so keyboard users can scroll them.
(function () {
  function fix(root) {
    root.querySelectorAll('[data-label-id] input[type="file"]:not([aria-labelledby])').forEach(function (input) {
      input.setAttribute('aria-labelledby', input.closest('[data-label-id]').getAttribute('data-label-id'));
    });
    root.querySelectorAll('.rt-ScrollAreaViewport:not([tabindex])').forEach(function (el) {
      el.setAttribute('tabindex', '0');
    });
  }
  function start() {
    fix(document);
    new MutationObserver(function () { fix(document); }).observe(document.body, { childList: true, subtree: true });
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();

// What a tap brought comes into sight. On a phone the page is long and a message ("保存しました", a field's
// error), a confirmation or a form opened for a row can appear far above or below the finger: the person then
// sees nothing happen. Within a few seconds of a tap, a key or a submit, the topmost such element that
// appeared (or whose text changed) off-screen is scrolled to the middle of the screen, clear of the sticky
// header. Not at page load, not inside dialogs (they are on screen) and not for toasts. A thanks (role
// status) is not worth losing one's place for when the tap was in a row that shows its own result (class
// keeps-place, e.g. a household on a circular's status page) and that row is still on screen.
(function () {
  var SEL = '[role="status"], [role="alert"], [role="alertdialog"], .reveal-on-show';
  var lastAct = 0;
  var lastPlace = null;
  var batch = [];
  ['pointerdown', 'keydown', 'submit'].forEach(function (type) {
    document.addEventListener(type, function (event) {
      lastAct = Date.now();
      lastPlace = event.target && event.target.closest ? event.target.closest('.keeps-place') : null;
    }, true);
  });
  function onScreen(el) {
    if (!el || !el.isConnected) { return false; }
    var r = el.getBoundingClientRect();
    return r.height > 0 && r.bottom > 0 && r.top < window.innerHeight;
  }
  function offscreen(el) {
    var r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) { return false; }
    var header = document.querySelector('header');
    var top = header ? header.getBoundingClientRect().bottom : 0;
    return r.top < top || r.bottom > window.innerHeight;
  }
  function flush() {
    var found = batch.filter(function (el) { return el.isConnected; });
    batch = [];
    if (!found.length) { return; }
    found.sort(function (a, b) { return a.getBoundingClientRect().top - b.getBoundingClientRect().top; });
    if (found[0].getAttribute('role') === 'status' && onScreen(lastPlace)) { return; }
    if (offscreen(found[0])) {
      var still = window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
      found[0].scrollIntoView({ block: 'center', behavior: still ? 'auto' : 'smooth' });
    }
  }
  function note(el) {
    if (!el || Date.now() - lastAct > 8000) { return; }
    if (el.closest('[role="dialog"], [data-sonner-toaster]')) { return; }
    if (!batch.length) { setTimeout(flush, 60); }
    batch.push(el);
  }
  function start() {
    new MutationObserver(function (records) {
      records.forEach(function (rec) {
        if (rec.type === 'characterData') {
          var host = rec.target.parentElement;
          note(host && host.closest(SEL));
          return;
        }
        rec.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1) {
            var parent = node.parentElement;
            note(parent && parent.closest(SEL));
            return;
          }
          if (node.matches(SEL)) { note(node); } else { note(node.querySelector(SEL)); }
        });
      });
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
