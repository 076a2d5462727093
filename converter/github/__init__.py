"""GitHub I/O: the action's inputs, outputs, job summary, annotations and artifact upload.

Nothing outside this package knows that it runs in Actions. Nothing here runs at import.
"""
