"""The ``govshare`` command groups: each module registers its parser (``register``) and keeps its
handlers, importing the heavy parts only when a handler runs."""
