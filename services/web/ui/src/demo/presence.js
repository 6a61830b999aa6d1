// The "here now" list: one entry per awareness state in the room, this client first.
import { h } from '../common/dom.js'
import { displayUser } from './identity.js'

/**
 * Renders `awareness`'s states into `list` now and on every change.
 * @param {HTMLElement} list
 * @param {HTMLElement} count
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @returns {() => void} stops updating
 */
export function bindPresence (list, count, awareness) {
  const render = () => {
    const people = []
    awareness.getStates().forEach((state, clientId) => {
      if (!state.user) return
      people.push({ clientId, self: clientId === awareness.clientID, ...displayUser(state.user, clientId) })
    })
    people.sort((a, b) => (b.self - a.self) || a.name.localeCompare(b.name) || a.clientId - b.clientId)
    list.replaceChildren(...people.map((p) => {
      const swatch = h('span', { class: 'swatch' })
      swatch.style.backgroundColor = p.color
      const item = h('li', { class: 'person', attrs: { 'data-client': String(p.clientId) } }, [
        swatch,
        h('span', { class: 'name', text: p.name })
      ])
      if (p.self) item.append(h('span', { class: 'muted', text: ' (you)' }))
      return item
    }))
    count.textContent = people.length === 1 ? 'just you' : `${people.length} people`
  }
  awareness.on('change', render)
  render()
  return () => awareness.off('change', render)
}
