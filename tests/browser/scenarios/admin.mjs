// `admin`: the admin console in a browser against gateway URL 1, while a stock y-websocket
// client (started by the calling test on another node) holds `--room` with `--text` and an
// awareness state named "Held client".
//
// 1. Without the token the console refuses: the API answers 401 and a wrong token sent
//    through the login form is refused (a first tab, whose only problems may be those 401s).
// 2. With `--token` (a second tab, which must stay clean): the Cluster view lists `--nodes`
//    nodes; the Rooms view finds `--room` by searching (presence is reported every 5 s);
//    its Room view shows the client's text and awareness, and follows them live (the client
//    appends ` #n` and sets its awareness `tick` to n once a second); the download action saves
//    a binary update; the delete action (confirmed) deletes the room — the calling test
//    checks that the client was closed with 4404.
// Screenshots: admin-cluster, admin-rooms, admin-room.
import { launch, watchedContext, watchedPage, expectClean, screenshot, waitUntil, ScenarioError } from '../lib.mjs'
import { readFileSync } from 'node:fs'

const PRESENCE_WAIT_MS = 30_000

export async function run ({ urls, artifacts, room, token, text, nodes }) {
  if (!token || !text) throw new ScenarioError('admin needs --token and --text')
  const base = urls[0]
  const browser = await launch()
  try {
    const watched = await watchedContext(browser)

    // 1. Refusals.
    const first = await watchedPage(watched, 'refused')
    const response = await first.page.goto(`${base}/admin`, { waitUntil: 'load' })
    if (response?.status() !== 200) throw new ScenarioError(`GET /admin answered ${response?.status()}`)
    const csp = response.headers()['content-security-policy'] ?? ''
    if (!csp.includes("script-src 'self'") || csp.includes('unsafe')) throw new ScenarioError('GET /admin lacks the strict policy', { csp })
    await first.page.waitForSelector('#login-form')
    if (await first.page.isVisible('#cluster-view')) throw new ScenarioError('the cluster shows before logging in')
    const bare = await first.page.evaluate(() => fetch('/admin/api/cluster').then((r) => r.status))
    if (bare !== 401) throw new ScenarioError(`the API answered ${bare} without a token, expected 401`)
    await first.page.fill('#token', `${token}-wrong`)
    await first.page.click('#login-form button[type="submit"]')
    const refusal = await waitUntil(async () => (await first.page.textContent('#login-error')) || null, 10_000, 'the login form reports the refusal')
    if (!/refused/i.test(refusal)) throw new ScenarioError('the refusal is not reported as such', { refusal })
    if (await first.page.isVisible('#cluster-view')) throw new ScenarioError('a wrong token opened the console')
    const unexpected = (await first.problems()).filter((p) => !/401/.test(p))
    if (unexpected.length) throw new ScenarioError('the refused tab reported other problems', { problems: unexpected })
    await first.page.close()

    // 2. The console with the token.
    const w = await watchedPage(watched, 'admin')
    const { page } = w
    await page.goto(`${base}/admin`, { waitUntil: 'load' })
    await page.fill('#token', token)
    await page.click('#login-form button[type="submit"]')
    await page.waitForSelector('#cluster-view', { state: 'visible' })
    const nodeRows = await waitUntil(async () => {
      const n = await page.locator('#nodes tbody tr').count()
      return n >= nodes && n
    }, 15_000, `the cluster lists ${nodes} nodes`)
    const facts = await page.textContent('#cluster-facts')
    if (!facts.includes('ready')) throw new ScenarioError('the cluster does not show Redis as ready', { facts })
    const shots = [await screenshot(page, artifacts, 'admin-cluster')]

    await page.click('#tab-rooms')
    await page.waitForSelector('#rooms-view', { state: 'visible' })
    await page.fill('#room-search', room)
    const link = page.locator('a.room-link', { hasText: room })
    await waitUntil(async () => {
      await page.click('#search-form button[type="submit"]')
      await page.waitForTimeout(1000)
      return (await link.count()) === 1
    }, PRESENCE_WAIT_MS, `the rooms list shows ${room}`)
    const row = await page.locator('#rooms tbody tr', { has: link }).innerText()
    shots.push(await screenshot(page, artifacts, 'admin-rooms'))

    await link.click()
    await page.waitForSelector('#room-view', { state: 'visible' })
    const content = await waitUntil(async () => {
      const c = await page.textContent('#room-content')
      return c.includes(text) && c
    }, 15_000, 'the room view shows the client\'s text')
    const awareness = await waitUntil(async () => {
      const a = await page.textContent('#room-awareness')
      return a.includes('Held client') && a
    }, 15_000, 'the room view shows the client\'s awareness state')
    // Live: the client's next tick reaches both the content and the awareness states.
    const tickOf = (json) => Math.max(0, ...JSON.parse(json).map((s) => s.state?.tick ?? 0))
    const seenTick = tickOf(awareness)
    const later = await waitUntil(async () => {
      const t = tickOf(await page.textContent('#room-awareness'))
      return t > seenTick && t
    }, 10_000, 'the awareness states update live')
    await waitUntil(async () => (await page.textContent('#room-content')).includes(` #${later}`), 10_000, 'the content updates live')
    shots.push(await screenshot(page, artifacts, 'admin-room'))

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#act-download')])
    const saved = readFileSync(await download.path())
    if (!download.suggestedFilename().endsWith('.ydoc') || saved.length < text.length) {
      throw new ScenarioError('the download is not the document', { name: download.suggestedFilename(), bytes: saved.length })
    }

    let confirmed = null
    page.once('dialog', (d) => { confirmed = d.message(); d.accept() })
    await page.click('#act-delete')
    await waitUntil(async () => /deleted/.test(await page.textContent('#notice')), 10_000, 'the console reports the deletion')
    if (!confirmed?.includes(room)) throw new ScenarioError('the delete action asked no confirmation naming the room', { confirmed })
    await expectClean(w)
    return { nodes: nodeRows, row, content: JSON.parse(content), awareness: JSON.parse(awareness), live_tick: later, download_bytes: saved.length, confirmed, screenshots: shots }
  } finally {
    await browser.close()
  }
}
