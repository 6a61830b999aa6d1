// DOM helpers shared by every page. Nothing here writes HTML strings or `style`
// attributes: text goes through `textContent` and colours through the CSSOM
// (`element.style.x = …`), which the pages' Content-Security-Policy allows.

/**
 * Creates an element.
 * @param {string} tag
 * @param {{ class?: string, text?: string, attrs?: Record<string, string> }} [props]
 * @param {Array<Node | string>} [children]
 * @returns {HTMLElement}
 */
export function h (tag, props = {}, children = []) {
  const el = document.createElement(tag)
  if (props.class) el.className = props.class
  if (props.text != null) el.textContent = props.text
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (name === 'style' || name.startsWith('on')) throw new Error(`h(): attribute ${name} is not allowed`)
    el.setAttribute(name, value)
  }
  el.append(...children)
  return el
}

/**
 * The element with `id`, or an error naming it (a page template and its script disagree).
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId (id) {
  const el = document.getElementById(id)
  if (!el) throw new Error(`the page has no #${id}`)
  return el
}

/**
 * The content of `<meta name="…">`, or `fallback`.
 * @param {string} name
 * @param {string} fallback
 */
export function meta (name, fallback = '') {
  const el = document.querySelector(`meta[name="${name}"]`)
  return el instanceof HTMLMetaElement ? el.content : fallback
}

/**
 * The WebSocket base URL of this server: same host, `wss:` under https, then the gateway's
 * room path prefix (`server.path_prefix`).
 * @param {{ protocol: string, host: string }} location
 * @param {string} prefix
 */
export function serverUrl (location, prefix) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${scheme}//${location.host}${prefix}`
}
