"""Robustness requirements as tests, for robustkit.pytest_plugin.

``requirement`` (what a test demands, measured by the evaluator), ``marker`` (the marker's
arguments), ``session`` (the ``robustkit_check`` callable and the session report), ``baseline``
(accepted figures), ``options`` and ``state`` (light: loaded with the plugin in every pytest run).
"""
