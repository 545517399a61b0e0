// Moving between the console's pages without reloading. The router renders
// the page; it registers itself here (main.js does it once), so pages can
// navigate without importing the router that imports them.

let renderPage = () => {};
export function onNavigate(render) {
  renderPage = render;
}

export function navigate(url, { replace = false, state = null } = {}) {
  if (replace) history.replaceState(state, '', url);
  else history.pushState(state, '', url);
  renderPage(true);
}
