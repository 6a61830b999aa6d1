// Shared helpers for the browser scenarios: launching Debian's chromium through
// playwright-core, watching a page for anything a user would call broken (console errors,
// uncaught exceptions, Content-Security-Policy violations, failed or off-machine requests),
// bounded waits, screenshots.
import { chromium } from 'playwright-core'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

/** The browser: Debian's package, never a download. */
export const CHROMIUM = process.env.YWS_CHROMIUM || '/usr/bin/chromium'

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage'
]

/** A failed expectation: the scenario exits 1 with `reason` and `details`. */
export class ScenarioError extends Error {
  constructor (reason, details = {}) {
    super(reason)
    this.details = details
  }
}

/** Whether `url` points at this machine's loopback. */
export function isLoopback (url) {
  const host = new URL(url).hostname
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/**
 * Launches chromium. `launch()` gives it a fresh temporary profile (`--user-data-dir` in a
 * new directory, removed on close), so no state carries over between runs.
 */
export async function launch () {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    timeout: 30_000
  })
}

/**
 * A browser context whose pages are watched. Requests that would leave the machine are
 * aborted and reported (the pages must work offline).
 * @param {import('playwright-core').Browser} browser
 */
export async function watchedContext (browser) {
  const context = await browser.newContext({ viewport: { width: 1180, height: 760 }, deviceScaleFactor: 1 })
  const offsite = []
  await context.route('**/*', (route) => {
    const url = route.request().url()
    if (url.startsWith('data:') || isLoopback(url)) return route.continue()
    offsite.push(url)
    return route.abort('blockedbyclient')
  })
  await context.addInitScript(() => {
    window.__ywsCsp = []
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__ywsCsp.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample })
    })
  })
  return { context, offsite }
}

/**
 * Opens a page in `watched` and records what goes wrong on it.
 * @returns {Promise<{ page: import('playwright-core').Page, problems: () => Promise<string[]> }>}
 */
export async function watchedPage (watched, name) {
  const page = await watched.context.newPage()
  page.setDefaultTimeout(15_000)
  const seen = []
  page.on('console', (m) => {
    if (m.type() === 'error') seen.push(`${name}: console error: ${m.text()}`)
  })
  page.on('pageerror', (e) => seen.push(`${name}: uncaught: ${e.message}`))
  page.on('requestfailed', (r) => {
    if (!watched.offsite.includes(r.url())) seen.push(`${name}: request failed: ${r.url()} ${r.failure()?.errorText}`)
  })
  page.on('response', (r) => {
    if (r.status() >= 400) seen.push(`${name}: HTTP ${r.status()} for ${r.url()}`)
  })
  page.on('websocket', (ws) => {
    if (!isLoopback(ws.url())) seen.push(`${name}: WebSocket off the machine: ${ws.url()}`)
  })
  const problems = async () => {
    const csp = await page.evaluate(() => window.__ywsCsp ?? []).catch(() => [])
    return [
      ...seen,
      ...watched.offsite.map((u) => `${name}: request off the machine: ${u}`),
      ...csp.map((v) => `${name}: CSP violation: ${v.directive} blocked ${v.blocked} ${v.sample ?? ''}`)
    ]
  }
  return { page, problems }
}

/** Fails unless the page saw no problems. */
export async function expectClean (...watchers) {
  const all = (await Promise.all(watchers.map((w) => w.problems()))).flat()
  if (all.length) throw new ScenarioError('the page reported problems', { problems: all })
}

/**
 * Checks that the policy is enforced (so a clean run means something): an inline script and
 * a style attribute added now must be refused and reported.
 */
export async function expectCspEnforced (page) {
  const ran = await page.evaluate(() => {
    const s = document.createElement('script')
    s.textContent = 'window.__ywsInline = true'
    document.head.append(s)
    const d = document.createElement('div')
    d.setAttribute('style', 'outline: 1px solid red')
    document.body.append(d)
    return window.__ywsInline === true
  })
  if (ran) throw new ScenarioError('an inline script ran: the Content-Security-Policy is not enforced')
  await waitUntil(() => page.evaluate(() => window.__ywsCsp.length >= 2), 5_000, 'the policy reports its violations')
  const directives = await page.evaluate(() => window.__ywsCsp.map((v) => v.directive))
  return directives
}

/** Polls `condition` (async allowed) every 50 ms until it is truthy, or fails after `ms`. */
export async function waitUntil (condition, ms, what) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await condition()
    if (value) return value
    if (Date.now() > deadline) throw new ScenarioError(`timed out after ${ms} ms waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Saves a full-page screenshot as `<dir>/<name>.png`; returns its path. */
export async function screenshot (page, dir, name) {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

/** The demo editor's text, one line per block, without remote carets' labels. */
export function editorText (page) {
  return page.evaluate(() => {
    const root = document.querySelector('#editor .ProseMirror')
    if (!root) return null
    return [...root.children].map((block) => {
      const copy = block.cloneNode(true)
      copy.querySelectorAll('.yws-caret').forEach((c) => c.remove())
      return copy.textContent.replace(/\u2060/g, '')
    }).join('\n')
  })
}

/** Names in the demo's "here now" list. */
export function presenceNames (page) {
  return page.locator('#presence .name').allTextContents()
}
