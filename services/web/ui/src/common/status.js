// A connection badge: one element whose `data-state` and text say how the page's live
// connection is doing. Used by the demo (its y-websocket provider); the admin console's
// live streams use the same badge.

/** @typedef {'connecting' | 'connected' | 'synced' | 'offline'} State */

const LABELS = {
  connecting: 'connecting…',
  connected: 'connected, syncing…',
  synced: 'live',
  offline: 'offline, retrying…'
}

/**
 * @param {HTMLElement} el
 * @returns {(state: State, detail?: string) => void}
 */
export function statusBadge (el) {
  return (state, detail) => {
    el.dataset.state = state
    el.textContent = detail ? `${LABELS[state]} ${detail}` : LABELS[state]
  }
}
