"""Helpers shared by the tests: a reference greedy (oracle), toy BIG-bench archives,
and tokenizer files built from offline assets."""
