#if canImport(Glibc)
import Glibc
#endif

// shoal-bench: an MQTT load generator for Shoal and other brokers (see Options.usage, or --help).
exit(Bench.main(Array(CommandLine.arguments.dropFirst())))
