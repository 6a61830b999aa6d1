// `landing`: GET / in a browser. The page renders, its module script runs under the policy,
// it links what this node serves (the demo only when it is on), and nothing goes wrong on
// the way: no console error, no policy violation, no request off the machine. With the
// demo on, its link leads to a working demo page. Last, a positive control: the policy
// really refuses inline code on these pages.
import { launch, watchedContext, watchedPage, expectClean, expectCspEnforced, screenshot, waitUntil, presenceNames, ScenarioError } from '../lib.mjs'

export async function run ({ urls, artifacts, expectDemo, shot }) {
  const base = urls[0]
  const browser = await launch()
  try {
    const watched = await watchedContext(browser)
    const w = await watchedPage(watched, 'landing')
    const { page } = w
    const response = await page.goto(`${base}/`, { waitUntil: 'load' })
    if (response?.status() !== 200) throw new ScenarioError(`GET / answered ${response?.status()}`)
    const csp = response.headers()['content-security-policy'] ?? ''
    if (!csp.includes("script-src 'self'") || csp.includes('unsafe')) throw new ScenarioError('GET / lacks the strict policy', { csp })

    const wsUrl = base.replace(/^http/, 'ws')
    await waitUntil(async () => (await page.textContent('#ws-url')) === wsUrl, 5_000, `the page shows ${wsUrl} (its script ran)`)
    const links = await page.locator('a.card').evaluateAll((as) => as.map((a) => a.getAttribute('href')))
    for (const want of ['/metrics', '/readyz']) {
      if (!links.includes(want)) throw new ScenarioError(`no link to ${want}`, { links })
    }
    if (!links.some((l) => l.startsWith('https://github.com/') && l.endsWith('#readme'))) throw new ScenarioError('no link to the docs', { links })
    if (links.includes('/demo') !== expectDemo) throw new ScenarioError(`the demo link is ${expectDemo ? 'missing' : 'there'}`, { links })
    const shots = [await screenshot(page, artifacts, shot)]

    let demo = null
    if (expectDemo) {
      await Promise.all([page.waitForURL(`${base}/demo`), page.click('a.card[href="/demo"]')])
      await page.waitForSelector('#status[data-state="synced"]')
      await page.waitForSelector('#editor .ProseMirror')
      const names = await waitUntil(async () => {
        const n = await presenceNames(page)
        return n.length === 1 && n
      }, 5_000, 'the demo lists this visitor')
      demo = { presence: names }
      shots.push(await screenshot(page, artifacts, `${shot}-demo`))
    }
    await expectClean(w)
    const refused = await expectCspEnforced(page)
    return { links, demo, refused, screenshots: shots }
  } finally {
    await browser.close()
  }
}
