"""Dashboard pages, one module each; each is thin: read state, call core, draw."""
