"""Parts of pages too long to sit in the page itself; each module serves the page of its name (lifecycle: Models and Regression)."""
