"""The evaluator: suites of attacks run as a cascade over nested budgets, the tidy results and the
automatic checks on them (``engine``, ``suites``, ``rows``, ``results``, ``stats``, ``checks``).

The package is called ``auditing`` rather than ``audit`` so that ``robustkit.audit`` stays the
public function that runs one.
"""
