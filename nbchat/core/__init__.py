"""The core pipeline: attachments -> extraction -> budgets -> layout -> stream -> store.

Nothing here imports IPython or widgets; heavy libraries load inside the functions
that use them.
"""
