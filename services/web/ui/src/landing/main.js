// The landing page: fills the client example with this server's WebSocket URL.
import { byId, meta, serverUrl } from '../common/dom.js'

byId('ws-url').textContent = serverUrl(window.location, meta('yws-room-prefix'))
