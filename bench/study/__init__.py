"""`bench study`: the paper's whole latency study as stages of ordinary run files, and one report."""
