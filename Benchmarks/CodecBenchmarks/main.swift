print("codec benchmarks: not yet written")
