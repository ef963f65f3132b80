// Source of ../markdown.bundle.js: Markdown to HTML for the chat panel, safe by construction.
//
// Model output is untrusted. Two layers keep it inert:
// 1. marked renders Markdown with every raw HTML token escaped, so `<script>` or
//    `<img onerror=...>` typed by the model is shown as text, never parsed as markup;
//    images become plain links, so an answer cannot make the browser fetch a URL.
// 2. DOMPurify then sanitizes the HTML marked produced (drops `javascript:` and other
//    unsafe URLs, event attributes, and anything unexpected).
import { Marked } from "marked";
import DOMPurify from "dompurify";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
}

const marked = new Marked({ gfm: true, breaks: true, async: false });

marked.use({
  renderer: {
    html({ text }) {
      return escapeHtml(text);
    },
    image({ href, text }) {
      const label = text ? `image: ${text}` : "image";
      return `<a href="${escapeHtml(href || "")}">${escapeHtml(label)}</a>`;
    },
  },
});

const purifier = DOMPurify();

purifier.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    if (node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  }
});

const PURIFY_OPTIONS = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "img", "svg", "math", "form", "button", "textarea", "select", "iframe", "video", "audio"],
  FORBID_ATTR: ["style", "id", "name"],
  ALLOW_DATA_ATTR: false,
};

/** Markdown source -> sanitized HTML string, ready for innerHTML. */
export function renderMarkdown(source) {
  const html = marked.parse(String(source ?? ""));
  return purifier.sanitize(html, PURIFY_OPTIONS);
}

/** Plain text -> HTML-escaped text (for user messages and errors). */
export { escapeHtml };
