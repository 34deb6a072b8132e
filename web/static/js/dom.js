// Small DOM helpers shared by the pages. Everything is built with createElement and
// textContent: no innerHTML, so nothing a server or a person typed can become markup.

export function $(id) {
  const node = document.getElementById(id);
  if (!node) { throw new Error("missing element #" + id); }
  return node;
}

/** el("button", {class: "x", text: "Admit", on: {click: fn}, aria-label: "..."}, ...children) */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) { continue; }
    if (key === "text") { node.textContent = value; }
    else if (key === "class") { node.className = value; }
    else if (key === "on") {
      for (const [event, handler] of Object.entries(value)) { node.addEventListener(event, handler); }
    } else if (key === "dataset") { Object.assign(node.dataset, value); }
    else { node.setAttribute(key, value === true ? "" : String(value)); }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) { continue; }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a container's children with paragraphs of plain text. */
export function paragraphs(container, lines) {
  container.replaceChildren(...lines.filter(Boolean).map((text) => el("p", { text })));
}

/** Show exactly one of the page's stages (sections with data-stage) and move focus to its heading,
 * so screen-reader and keyboard users land where the page changed. */
export function showStage(name) {
  let current = null;
  for (const section of document.querySelectorAll("main > [data-stage]")) {
    const on = section.dataset.stage === name;
    if (on && !section.hidden) { return; }
    section.hidden = !on;
    if (on) { current = section; }
  }
  document.body.dataset.stage = name;
  const heading = current && current.querySelector("h1, h2");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: false });
  }
}

/** Fill a <select> with options, keeping the current choice when it still exists. */
export function fillSelect(select, options, chosen) {
  const keep = chosen ?? select.value;
  select.replaceChildren(...options.map((o) => el("option", { value: o.value, text: o.label })));
  if (options.some((o) => o.value === keep)) { select.value = keep; }
}
