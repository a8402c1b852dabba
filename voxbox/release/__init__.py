"""After the build: the Hub client, publishing, the dataset card and the HTML report."""
