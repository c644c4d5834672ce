"""Evaluation: official AVSBench metrics (:mod:`avseg.eval.metrics`)."""
