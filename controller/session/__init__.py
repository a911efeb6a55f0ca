"""A session: the checklist before it and the program during it."""
