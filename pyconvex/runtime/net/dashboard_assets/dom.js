// A few DOM helpers: the dashboard builds its pages with these, no framework.

/** h("button", {class: "x", onclick: fn, "aria-label": "..."}, child, ...) -> Element */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "value") {
      el.value = value;
    } else if (key === "checked" || key === "disabled" || key === "selected") {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace everything inside `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A labelled form field: <label>text <control></label>. */
export function field(text, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, text), control,
    hint ? h("span", { class: "hint" }, hint) : null);
}

/** Ctrl/Cmd+Enter in `textarea` runs `submit`. */
export function submitOnCtrlEnter(textarea, submit) {
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit();
    }
  });
  return textarea;
}

export function when(ms) {
  if (typeof ms !== "number") return "";
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function bytes(n) {
  if (typeof n !== "number") return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A message area for errors (role=alert, so screen readers say it). */
export function errorBox() {
  const box = h("div", { class: "error", role: "alert", hidden: true });
  box.show = (message) => {
    box.textContent = message || "";
    box.hidden = !message;
  };
  return box;
}
