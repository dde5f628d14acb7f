/**
 * The visualizer page's script: draws the Mermaid text the server put in #diagram. Opened
 * from the Vite dev server (no server-rendered text) it fetches the text instead.
 */
import mermaid from "mermaid";
import "../styles.css";

async function source(container: HTMLElement): Promise<string> {
  const text = container.querySelector("pre.mermaid-source")?.textContent;
  if (text) return text;
  const res = await fetch(`/machine/diagram.mmd${location.search}`);
  if (!res.ok) throw new Error(`the server answered ${res.status}`);
  return res.text();
}

/** The whole machine fits the page by default, small; a click shows it at full size (scrolling), another fits it again. */
function zoomOnClick(container: HTMLElement): void {
  const svg = container.querySelector("svg");
  if (!svg) return;
  container.title = "Click to zoom in or out";
  container.classList.add("zoomable");
  container.addEventListener("click", () => {
    const full = container.classList.toggle("full-size");
    svg.style.width = full ? svg.style.maxWidth : "";
  });
}

async function draw(): Promise<void> {
  let container = document.getElementById("diagram");
  if (!container) {
    container = document.createElement("div");
    container.id = "diagram";
    container.className = "card diagram";
    document.body.append(container);
  }
  mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral", fontFamily: "system-ui, sans-serif" });
  try {
    const { svg } = await mermaid.render("batch-machine-svg", await source(container));
    container.innerHTML = svg;
    container.dataset.rendered = "true";
    zoomOnClick(container);
  } catch (err) {
    const note = document.createElement("p");
    note.className = "error-text";
    note.textContent = `Could not draw the diagram (${err instanceof Error ? err.message : String(err)}); its text is shown instead.`;
    container.prepend(note);
    container.dataset.rendered = "failed";
  }
}

void draw();
