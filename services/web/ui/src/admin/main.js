// The admin console: a login form, then the Cluster, Rooms and Room views over this node's
// /admin/api/. The token lives in sessionStorage (this tab only) and travels in the
// Authorization header; the Room view reads the gateway's Server-Sent Events through
// fetch (EventSource cannot send that header).
import { byId, h } from '../common/dom.js'
import { parseEvents, bytes, duration, ago, route, roomHash } from './format.js'

const TOKEN_KEY = 'yws-admin-token'
const VIEWS = ['login', 'cluster-view', 'rooms-view', 'room-view']
/** The Cluster view refreshes this often (the API is not polled faster than 1 s). */
const CLUSTER_EVERY_MS = 5000

let live = null // the AbortController of the current view's requests
let roomsAfter = '' // the current page of the rooms list starts after this name
let roomsNext = null

class AuthError extends Error {}

function token () {
  return sessionStorage.getItem(TOKEN_KEY) ?? ''
}

async function api (path, init = {}) {
  const res = await fetch(`/admin/api/${path}`, {
    ...init,
    headers: { ...(init.headers ?? {}), Authorization: `Bearer ${token()}` },
    cache: 'no-store'
  })
  if (res.status === 401 || res.status === 403) {
    const body = await res.json().catch(() => ({}))
    throw new AuthError(body.error ?? (await res.text().catch(() => '')) ?? `HTTP ${res.status}`)
  }
  return res
}

async function apiJson (path, init) {
  const res = await api(path, init)
  const body = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`)
  return body
}

function show (id) {
  for (const v of VIEWS) byId(v).hidden = v !== id
  const loggedIn = id !== 'login'
  byId('tabs').hidden = !loggedIn
  byId('logout').hidden = !loggedIn
  byId('tab-cluster').toggleAttribute('aria-current', id === 'cluster-view')
  byId('tab-rooms').toggleAttribute('aria-current', id === 'rooms-view')
  if (id === 'cluster-view') byId('tab-cluster').setAttribute('aria-current', 'page')
  if (id === 'rooms-view') byId('tab-rooms').setAttribute('aria-current', 'page')
}

function notice (text) {
  const el = byId('notice')
  el.textContent = text
  el.hidden = !text
}

function fact (label, value, cls = '') {
  return h('div', { class: 'fact' }, [h('strong', { class: cls, text: String(value) }), h('span', { text: label })])
}

function fill (tableId, rows) {
  const body = byId(tableId).querySelector('tbody')
  body.replaceChildren(...rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, [c])))))
}

function failed (e) {
  if (e.name === 'AbortError') return
  if (e instanceof AuthError) {
    logout(e.message)
    return
  }
  notice(`Error: ${e.message}`)
}

// --- Cluster ---------------------------------------------------------------------------

async function cluster (signal) {
  while (!signal.aborted) {
    const c = await apiJson('cluster', { signal })
    const b = c.backend
    const redis = !b.shared ? 'none (standalone)' : b.ready ? 'ready' : 'unavailable'
    const backlog = c.backlog == null ? '–' : c.backlog.error ? 'unknown' : `${c.backlog.queued} queued, ${c.backlog.due} due`
    byId('cluster-facts').replaceChildren(
      fact('nodes', c.nodes.length),
      fact('connections', c.nodes.reduce((n, x) => n + (x.connections ?? 0), 0)),
      fact('Redis', redis, b.shared && !b.ready ? 'bad' : 'ok'),
      fact('rooms without live delivery', b.degraded_rooms),
      fact('compaction backlog', backlog)
    )
    fill('nodes', c.nodes.map((n) => [
      n.id + (n.local ? ' (this node)' : ''),
      n.address ?? '–',
      n.version ?? '–',
      duration(n.uptime_s),
      String(n.connections),
      String(n.rooms),
      n.ready == null ? '–' : n.ready ? 'yes' : 'no'
    ]))
    notice(b.error ? `Backend: ${b.error}` : '')
    await sleep(CLUSTER_EVERY_MS, signal)
  }
}

// --- Rooms -----------------------------------------------------------------------------

async function rooms (signal) {
  const q = byId('room-search').value.trim()
  const params = new URLSearchParams({ limit: '50' })
  if (q) params.set('q', q)
  if (roomsAfter) params.set('after', roomsAfter)
  const r = await apiJson(`rooms?${params}`, { signal })
  const now = Date.now()
  roomsNext = r.next
  byId('rooms-next').disabled = !r.next
  byId('rooms-first').disabled = !roomsAfter
  fill('rooms', r.rooms.map((room) => [
    h('a', { text: room.name, attrs: { href: roomHash(room.name), class: 'room-link' } }),
    String(room.connections),
    Object.entries(room.nodes).map(([n, c]) => `${n}: ${c}`).join(', ') || '–',
    bytes(room.doc_bytes),
    bytes(room.stats ? room.stats.snapshot_bytes : null),
    room.stats ? String(room.stats.log_entries) : '–',
    bytes(room.stats ? room.stats.log_bytes : null),
    ago(room.stats ? room.stats.last_update_ms : 0, now)
  ]))
  notice(r.rooms.length ? '' : 'No rooms.')
}

// --- Room ------------------------------------------------------------------------------

function objectsParam () {
  const o = byId('room-objects').value.trim()
  return o ? `&objects=${encodeURIComponent(o)}` : ''
}

function showRoom (s) {
  const nodes = Object.entries(s.nodes)
  byId('room-facts').replaceChildren(
    fact('connections (cluster)', nodes.reduce((n, [, c]) => n + c, 0) || s.connections_here),
    fact('document', bytes(s.doc_bytes)),
    fact('edits / s (Yjs clock)', s.clock_per_s == null ? '–' : s.clock_per_s.toFixed(1)),
    fact('log entries', s.stats ? s.stats.log_entries : '–'),
    fact('log bytes', bytes(s.stats ? s.stats.log_bytes : null)),
    fact('last update', ago(s.stats ? s.stats.last_update_ms : 0, s.now_ms))
  )
  fill('room-nodes', nodes.length ? nodes.map(([n, c]) => [n, String(c)]) : [['this node', String(s.connections_here)]])
  byId('room-awareness').textContent = JSON.stringify(s.awareness, null, 2)
  byId('room-content').textContent = JSON.stringify(s.content, null, 2)
}

async function room (name, signal) {
  byId('room-title').textContent = `Room ${name}`
  while (!signal.aborted) {
    const res = await api(`room/events?name=${encodeURIComponent(name)}${objectsParam()}`, { signal })
    if (!res.ok) {
      const body = await res.json().catch(() => ({}))
      throw new Error(body.error ?? `HTTP ${res.status}`)
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      const parsed = parseEvents(buffer + value)
      buffer = parsed.rest
      for (const e of parsed.events) {
        if (e.event === 'room') {
          showRoom(JSON.parse(e.data))
          notice('')
        } else if (e.event === 'deleted') {
          notice(`Room ${name} was deleted.`)
          return
        }
      }
    }
    // The stream ends after a while (or the node restarts): open the next one.
    await sleep(1000, signal)
  }
}

async function act (name, what) {
  const q = `name=${encodeURIComponent(name)}`
  if (what === 'delete') {
    if (!window.confirm(`Delete room ${name}? Every client is disconnected (4404) and its stored state removed.`)) return
    await apiJson(`room?${q}`, { method: 'DELETE' })
    notice(`Room ${name} deleted.`)
  } else if (what === 'kick') {
    const r = await apiJson(`room/kick?${q}`, { method: 'POST' })
    const unreached = Object.entries(r.nodes).filter(([, v]) => typeof v !== 'number').map(([n]) => n)
    notice(`${r.kicked} client(s) closed with 1012` + (unreached.length ? `; not reached: ${unreached.join(', ')}` : '.'))
  } else if (what === 'compact') {
    await apiJson(`room/compact?${q}`, { method: 'POST' })
    notice('Compaction queued.')
  } else if (what === 'download') {
    const res = await api(`room/update?${q}`)
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    const url = URL.createObjectURL(await res.blob())
    const a = h('a', { attrs: { href: url, download: `${name.replace(/[^\w.-]/g, '_')}.ydoc` } })
    document.body.append(a)
    a.click()
    a.remove()
    setTimeout(() => URL.revokeObjectURL(url), 10000)
  }
}

// --- Navigation ------------------------------------------------------------------------

function sleep (ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true })
  })
}

function render () {
  live?.abort()
  live = new AbortController()
  const { signal } = live
  notice('')
  if (!token()) {
    show('login')
    byId('token').focus()
    return
  }
  const r = route(window.location.hash)
  if (r.view === 'cluster') {
    show('cluster-view')
    cluster(signal).catch(failed)
  } else if (r.view === 'rooms') {
    show('rooms-view')
    rooms(signal).catch(failed)
  } else {
    show('room-view')
    room(r.room, signal).catch(failed)
  }
}

function logout (reason = '') {
  sessionStorage.removeItem(TOKEN_KEY)
  live?.abort()
  byId('login-error').textContent = reason
  show('login')
}

byId('login-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const value = byId('token').value.trim()
  if (!value) return
  sessionStorage.setItem(TOKEN_KEY, value)
  byId('token').value = ''
  try {
    await apiJson('cluster')
    byId('login-error').textContent = ''
    render()
  } catch (err) {
    if (err instanceof AuthError) logout(`Refused: ${err.message}`)
    else failed(err)
  }
})
byId('logout').addEventListener('click', () => logout())
byId('search-form').addEventListener('submit', (e) => {
  e.preventDefault()
  roomsAfter = ''
  render()
})
byId('rooms-next').addEventListener('click', () => {
  if (roomsNext) { roomsAfter = roomsNext; render() }
})
byId('rooms-first').addEventListener('click', () => { roomsAfter = ''; render() })
byId('objects-form').addEventListener('submit', (e) => { e.preventDefault(); render() })
for (const what of ['kick', 'compact', 'download', 'delete']) {
  byId(`act-${what}`).addEventListener('click', () => {
    const r = route(window.location.hash)
    if (r.view === 'room') act(r.room, what).catch(failed)
  })
}
window.addEventListener('hashchange', render)
render()
