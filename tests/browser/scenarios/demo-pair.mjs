// `demo-pair`: two people on two gateways of one cluster edit one demo room.
//
// Alice opens /demo on the first URL, Bob on the second (different origins: nothing can pass
// between the tabs but through the servers). Each names themself; Alice writes a first line
// that Bob must see. Then both type at once — Alice at the start of the first line, Bob in
// the second — and both editors must end up with the same text holding both sentences
// whole; then both type at once at the same spot, and the editors must again agree. Each
// must list the other in "here now" and show the other's caret, labelled with their name in
// their colour, and Alice must see Bob's selection. No console error, policy violation or
// request off the machine on either page.
import { launch, watchedContext, watchedPage, expectClean, screenshot, waitUntil, editorText, presenceNames, ScenarioError } from '../lib.mjs'

const TYPE_DELAY_MS = 15

async function open (browser, url, room, name) {
  const watched = await watchedContext(browser)
  const w = await watchedPage(watched, name)
  const response = await w.page.goto(`${url}/demo#${encodeURIComponent(room)}`, { waitUntil: 'load' })
  if (response?.status() !== 200) throw new ScenarioError(`${name}: GET /demo answered ${response?.status()}`)
  await w.page.waitForSelector('#status[data-state="synced"]')
  await w.page.fill('#name', name)
  return w
}

async function converged (a, b, what, check) {
  return waitUntil(async () => {
    const [ta, tb] = [await editorText(a.page), await editorText(b.page)]
    return ta != null && ta === tb && check(ta) && ta
  }, 20_000, what)
}

/** The colour a page shows for its own user (its swatch in "here now"). */
function ownColor (page) {
  return page.locator('#presence .person').first().locator('.swatch').evaluate((el) => getComputedStyle(el).backgroundColor)
}

async function seesCaretOf (page, name, color) {
  const label = page.locator('.yws-caret-label', { hasText: name })
  await label.first().waitFor({ state: 'visible' })
  const shown = await label.first().evaluate((el) => getComputedStyle(el).backgroundColor)
  if (shown !== color) throw new ScenarioError(`${name}'s caret is ${shown}, their colour is ${color}`)
}

export async function run ({ urls, room, artifacts }) {
  if (urls.length < 2) throw new ScenarioError('demo-pair needs two URLs')
  const browser = await launch()
  try {
    const alice = await open(browser, urls[0], room, 'Alice')
    const bob = await open(browser, urls[1], room, 'Bob')
    const editor = '#editor .ProseMirror'

    // Presence: each lists the other by name.
    await waitUntil(async () => (await presenceNames(alice.page)).includes('Bob'), 10_000, 'Alice lists Bob')
    await waitUntil(async () => (await presenceNames(bob.page)).includes('Alice'), 10_000, 'Bob lists Alice')

    // A first line, through both gateways.
    await alice.page.click(editor)
    await alice.page.keyboard.type('Shared notes', { delay: TYPE_DELAY_MS })
    await alice.page.keyboard.press('Enter')
    await waitUntil(async () => (await editorText(bob.page))?.startsWith('Shared notes'), 10_000, 'Bob sees Alice\'s first line')

    // Both type at once, in different places.
    await bob.page.click(editor)
    await bob.page.keyboard.press('Control+End')
    await alice.page.keyboard.press('Control+Home')
    const fromAlice = 'Alice was here. '
    const fromBob = 'Bob typed this line.'
    await Promise.all([
      alice.page.keyboard.type(fromAlice, { delay: TYPE_DELAY_MS }),
      bob.page.keyboard.type(fromBob, { delay: TYPE_DELAY_MS })
    ])
    const first = await converged(alice, bob, 'both editors hold both sentences',
      (t) => t.includes(`${fromAlice}Shared notes`) && t.includes(fromBob))

    // Both type at once at the same spot: the end of Bob's line.
    await alice.page.keyboard.press('Control+End')
    await bob.page.keyboard.press('Control+End')
    const again = [' [alice]', ' [bob]']
    await Promise.all([
      alice.page.keyboard.type(again[0], { delay: TYPE_DELAY_MS }),
      bob.page.keyboard.type(again[1], { delay: TYPE_DELAY_MS })
    ])
    const grown = first.length + again[0].length + again[1].length
    const second = await converged(alice, bob, 'both editors agree after typing at the same spot',
      (t) => t.length === grown)

    // Carets: each sees the other's, named and in their colour; Alice sees Bob's selection.
    await seesCaretOf(alice.page, 'Bob', await ownColor(bob.page))
    await seesCaretOf(bob.page, 'Alice', await ownColor(alice.page))
    await bob.page.keyboard.press('Shift+Home')
    await alice.page.locator('.yws-selection').first().waitFor({ state: 'attached' })

    const screenshots = [
      await screenshot(alice.page, artifacts, 'demo-alice'),
      await screenshot(bob.page, artifacts, 'demo-bob')
    ]
    await expectClean(alice, bob)
    return {
      text: second,
      presence: { alice: await presenceNames(alice.page), bob: await presenceNames(bob.page) },
      typed: { alice: [fromAlice, again[0]], bob: [fromBob, again[1]] },
      screenshots
    }
  } finally {
    await browser.close()
  }
}
