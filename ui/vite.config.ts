/**
 * The web UI's build: `ui/` is the root, `ui/dist` the output that `src/server/ui.ts` serves.
 * Two pages: the app (index.html) and the machine visualizer (machine.html, which alone
 * loads mermaid). `npm run ui:dev` proxies /api and /machine to a Tranche on port 3000.
 */
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));
const upstream = "http://127.0.0.1:3000";

export default defineConfig({
  root,
  base: "/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // mermaid is large and lazy-loaded by the visualizer only; its size is expected.
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      input: { index: `${root}index.html`, machine: `${root}machine.html` },
    },
  },
  server: {
    proxy: {
      "/api": { target: upstream, changeOrigin: true },
      "/machine/diagram.mmd": { target: upstream, changeOrigin: true },
    },
  },
});
