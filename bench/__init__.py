"""Benchmarks of the exchange service: the deadline rush (``bench.rush``), one large file
(``bench.large``) and a steady soak (``bench.soak``). See bench/RESULTS.md for how to run
them and what they measured."""
