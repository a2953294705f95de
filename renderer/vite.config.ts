// Builds the UI shared by the Electron window and `corral serve` (static files + WebSocket).
import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  // relative asset URLs: loaded from file:// in Electron and from / by `corral serve`
  base: './',
  plugins: [svelte()],
  build: {
    outDir: '../out/renderer',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // CSP forbids inline scripts; keep every asset a real file
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    fs: { allow: ['..'] },
  },
});
