"""Where records come from: the corpus catalog, downloads, one recipe per corpus, prepare."""
