print("runtime benchmarks: not yet written")
