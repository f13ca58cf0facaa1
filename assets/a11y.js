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
