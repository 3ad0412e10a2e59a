"""Whole-pipeline harness: real Redis (AOF), Dovecot, the Worker in workerd, a
recording receiver, and the four services as separate, killable processes.

Used by ``tests/integration/test_e2e_*.py``, ``test_faults_run.py`` and
``bench/e2e_bench.py``. Modules:

* :mod:`.processes` -- a service process (console script), the Worker process;
* :mod:`.fakes` -- provider file server and the programmable webhook receiver;
* :mod:`.mail` -- test emails with a unique marker, IMAP APPEND and HTTP posts;
* :mod:`.pipeline` -- everything wired together, with fault operations;
* :mod:`.oracle` -- what went in vs what the receiver got (lost, duplicates).
"""
