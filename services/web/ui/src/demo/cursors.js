// Remote carets and selections for y-prosemirror's cursor plugin, built without `style`
// attributes: y-prosemirror's default builders call `setAttribute('style', …)`, which a
// strict Content-Security-Policy refuses. Colours go through the CSSOM instead, and the
// selection's `style` decoration attribute is applied by prosemirror-view via
// `style.cssText`, which the policy allows too.
import { displayUser } from './identity.js'

/**
 * The caret of another client: a coloured bar with a name label.
 * @param {any} user the client's awareness `user` field
 * @param {number} clientId
 * @returns {HTMLElement}
 */
export function cursorBuilder (user, clientId) {
  const { name, color } = displayUser(user, clientId)
  const caret = document.createElement('span')
  caret.className = 'yws-caret'
  caret.dataset.client = String(clientId)
  caret.style.borderColor = color
  const label = document.createElement('span')
  label.className = 'yws-caret-label'
  label.style.backgroundColor = color
  label.textContent = name
  // Word joiners keep the caret from being split from its neighbours by line breaking.
  caret.append('\u2060', label, '\u2060')
  return caret
}

/**
 * Decoration attributes for another client's selection: a translucent tint of its colour.
 * @param {any} user
 * @param {number} clientId
 */
export function selectionBuilder (user, clientId) {
  const { color } = displayUser(user, clientId)
  return { class: 'yws-selection', style: `background-color: ${color}33` }
}
