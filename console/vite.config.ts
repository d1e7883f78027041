/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { resolve } from "node:path";
import { defineConfig } from "vite";

// Two pages: the console (index.html, served at /console/ with a fallback to it for every
// route) and GraphiQL (graphiql.html, served by the gateway at GET /graphql in development).
// Hashed files land in dist/assets/, which the gateway serves with a long cache lifetime.
export default defineConfig({
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      input: {
        console: resolve(import.meta.dirname, "index.html"),
        graphiql: resolve(import.meta.dirname, "graphiql.html"),
      },
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["src/test/setup.ts"],
    include: ["src/**/*.test.tsx", "src/**/*.test.ts"],
    // Upper bounds for a slow, shared CI machine (Ant Design's DOM is large), not measurements.
    testTimeout: 30_000,
  },
});
