// The demo page: a shared rich-text document over the stock y-websocket client, against
// the server that served the page.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { byId, meta, serverUrl } from '../common/dom.js'
import { statusBadge } from '../common/status.js'
import { roomFromLocation, roomHash, cleanRoom } from './room.js'
import { loadIdentity, saveIdentity, cleanName } from './identity.js'
import { createEditor, FRAGMENT } from './editor.js'
import { bindPresence } from './presence.js'
import { bindToolbar } from './toolbar.js'

function storage () {
  try {
    return window.localStorage
  } catch {
    return null
  }
}

const room = roomFromLocation(window.location)
document.title = `${room} · yws demo`

const ydoc = new Y.Doc()
const provider = new WebsocketProvider(
  serverUrl(window.location, meta('yws-room-prefix')),
  encodeURIComponent(room),
  ydoc
)

// Presence: who you are, who else is here.
let identity = loadIdentity(storage())
provider.awareness.setLocalStateField('user', identity)
const nameInput = /** @type {HTMLInputElement} */ (byId('name'))
nameInput.value = identity.name
nameInput.addEventListener('input', () => {
  const name = cleanName(nameInput.value)
  if (!name) return
  identity = { ...identity, name }
  saveIdentity(storage(), identity)
  provider.awareness.setLocalStateField('user', identity)
})
bindPresence(byId('presence'), byId('presence-count'), provider.awareness)

// Connection state.
const setStatus = statusBadge(byId('status'))
setStatus('connecting')
provider.on('status', ({ status }) => {
  if (status === 'connected') setStatus(provider.synced ? 'synced' : 'connected')
  else if (status === 'disconnected') setStatus('offline')
  else setStatus('connecting')
})
provider.on('sync', (synced) => {
  if (provider.wsconnected) setStatus(synced ? 'synced' : 'connected')
})

// The editor and its toolbar.
let refreshToolbar = () => {}
const view = createEditor(byId('editor'), ydoc.getXmlFragment(FRAGMENT), provider.awareness, () => refreshToolbar())
refreshToolbar = bindToolbar(byId('toolbar'), view)

// Rooms: the fragment names the room; the form switches to another.
const roomInput = /** @type {HTMLInputElement} */ (byId('room'))
roomInput.value = room
byId('room-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const next = cleanRoom(roomInput.value)
  if (next && next !== room) window.location.hash = roomHash(next)
})
window.addEventListener('hashchange', () => {
  if (roomFromLocation(window.location) !== room) window.location.reload()
})
const share = /** @type {HTMLAnchorElement} */ (byId('share-link'))
share.href = `${window.location.origin}${window.location.pathname}${roomHash(room)}`
share.textContent = share.href

window.addEventListener('pagehide', () => provider.destroy())
