// Read by vite-plugin-svelte and svelte-check.
export default {
  compilerOptions: {
    runes: true,
  },
};
