"""The evaluator: suites of attacks run as a cascade over nested budgets, the tidy results and the
automatic checks on them. ``plan`` and ``suites`` decide what runs; ``engine`` runs it, one
``batch`` at a time for every ``threats`` family, saving ``progress`` per batch (resume,
``distributed`` sharding); ``rows`` and ``results`` hold the tidy frame; ``stats``, ``probes`` and
``checks`` judge it.

The package is called ``auditing`` rather than ``audit`` so that ``robustkit.audit`` stays the
public function that runs one.
"""
