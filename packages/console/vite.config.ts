import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Served by `keyward serve` at /console/ under a CSP without 'unsafe-inline' in script-src, so the
// build must emit no inline script: the module-preload polyfill is the one Vite would inline.
export default defineConfig({
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    // Never inline assets as data: URLs; the CSP's img-src/font-src stay 'self'.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 600,
  },
  server: {
    // `npm run dev -w @keyward/console` against a local `keyward serve` on the default port.
    proxy: { "/admin": "http://127.0.0.1:8080" },
  },
});
