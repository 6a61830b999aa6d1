// The formatting toolbar: buttons in the page template name a command in `data-command`;
// this binds them and keeps their pressed/disabled state in step with the selection.
import { toggleMark, setBlockType, wrapIn, lift } from 'prosemirror-commands'
import { wrapInList } from 'prosemirror-schema-list'
import { undoCommand, redoCommand } from 'y-prosemirror'

/**
 * @param {import('prosemirror-model').Schema} schema
 */
export function commands (schema) {
  const { strong, em, code } = schema.marks
  const { heading, paragraph, bullet_list: bullets, ordered_list: ordered, blockquote } = schema.nodes
  const block = (type, attrs) => ({
    run: setBlockType(type, attrs),
    active: (state) => {
      const { $from, to } = state.selection
      return to <= $from.end() && $from.parent.hasMarkup(type, attrs)
    }
  })
  const mark = (type) => ({
    run: toggleMark(type),
    active: (state) => {
      const { from, $from, to, empty } = state.selection
      return empty ? !!type.isInSet(state.storedMarks || $from.marks()) : state.doc.rangeHasMark(from, to, type)
    }
  })
  return {
    bold: mark(strong),
    italic: mark(em),
    code: mark(code),
    h1: block(heading, { level: 1 }),
    h2: block(heading, { level: 2 }),
    paragraph: block(paragraph),
    bullets: { run: wrapInList(bullets) },
    numbers: { run: wrapInList(ordered) },
    quote: { run: wrapIn(blockquote) },
    lift: { run: lift },
    undo: { run: undoCommand },
    redo: { run: redoCommand }
  }
}

/**
 * Binds the toolbar's buttons to `view`; returns the function that refreshes their state
 * (call it from the view's `dispatchTransaction`).
 * @param {HTMLElement} toolbar
 * @param {import('prosemirror-view').EditorView} view
 */
export function bindToolbar (toolbar, view) {
  const table = commands(view.state.schema)
  const buttons = [...toolbar.querySelectorAll('button[data-command]')]
  for (const button of buttons) {
    const command = table[button.dataset.command]
    if (!command) throw new Error(`toolbar: unknown command ${button.dataset.command}`)
    // Keep the editor's selection: act on mousedown, before focus moves to the button.
    button.addEventListener('mousedown', (event) => {
      event.preventDefault()
      command.run(view.state, view.dispatch, view)
      view.focus()
    })
  }
  const refresh = () => {
    for (const button of buttons) {
      const command = table[button.dataset.command]
      button.disabled = !command.run(view.state, undefined, view)
      if (command.active) button.setAttribute('aria-pressed', String(command.active(view.state)))
    }
  }
  refresh()
  return refresh
}
